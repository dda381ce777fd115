#include "textflag.h"

DATA smk<>+0(SB)/4, $0x42b20000 // expHi
DATA smk<>+4(SB)/4, $0xc2d00000 // expLo
DATA smk<>+8(SB)/4, $0x3fb8aa3b // log2e
DATA smk<>+12(SB)/4, $0x3f318000 // C1
DATA smk<>+16(SB)/4, $0xb95e8083 // C2
DATA smk<>+20(SB)/4, $0x39506967 // P0
DATA smk<>+24(SB)/4, $0x3ab743ce // P1
DATA smk<>+28(SB)/4, $0x3c088908 // P2
DATA smk<>+32(SB)/4, $0x3d2aa9c1 // P3
DATA smk<>+36(SB)/4, $0x3e2aaaaa // P4
DATA smk<>+40(SB)/4, $0x3f000000 // P5
DATA smk<>+44(SB)/4, $0x3f800000 // 1
DATA smk<>+48(SB)/4, $0xff800000 // -inf
DATA smk<>+52(SB)/4, $0x80000000 // -0
GLOBL smk<>(SB), RODATA, $56

// func softmaxRowsAVX512(dst, x *float32, rows, size int)
// softmaxRow on each of rows rows of size elements, 16 a pass (a row's
// last pass masked by K1): the row's max (VMAXPS, folded across lanes),
// exp32 of x - max (the Go steps, one instruction each; 2^n by VSCALEFPS)
// stored and added into 16 lanes from -0, the lanes folded l+8, l+4, l+2,
// l+1, then every element divided by the sum.
TEXT ·softmaxRowsAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ rows+16(FP), R9
	MOVQ size+24(FP), R10
	VBROADCASTSS smk<>+0(SB), Z20
	VBROADCASTSS smk<>+4(SB), Z21
	VBROADCASTSS smk<>+8(SB), Z22
	VBROADCASTSS smk<>+12(SB), Z23
	VBROADCASTSS smk<>+16(SB), Z24
	VBROADCASTSS smk<>+20(SB), Z25
	VBROADCASTSS smk<>+24(SB), Z26
	VBROADCASTSS smk<>+28(SB), Z27
	VBROADCASTSS smk<>+32(SB), Z28
	VBROADCASTSS smk<>+36(SB), Z29
	VBROADCASTSS smk<>+40(SB), Z30
	VBROADCASTSS smk<>+44(SB), Z31
	// K1: the lanes of a row's last pass (all 16 when size is a multiple).
	MOVQ R10, CX
	ANDQ $15, CX
	MOVQ $0xffff, AX
	JZ sm_mask
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
sm_mask:
	KMOVW AX, K1
	MOVQ R10, R11
	SUBQ $1, R11
	ANDQ $-16, R11 // elements before the last pass
	SHLQ $2, R11
sm_row:
	TESTQ R9, R9
	JLE sm_done
	// max
	VBROADCASTSS smk<>+48(SB), Z0
	XORQ BX, BX
sm_max:
	CMPQ BX, R11
	JGE sm_max_last
	VMAXPS (SI)(BX*1), Z0, Z0
	ADDQ $64, BX
	JMP sm_max
sm_max_last:
	VMAXPS (SI)(BX*1), Z0, K1, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VBROADCASTSS X0, Z1
	// exp and sum
	VBROADCASTSS smk<>+52(SB), Z2
	XORQ BX, BX
sm_exp:
	CMPQ BX, R11
	JGE sm_exp_last
	VMOVUPS (SI)(BX*1), Z4
	VSUBPS Z1, Z4, Z4
	VMINPS Z4, Z20, Z4
	VMAXPS Z4, Z21, Z4
	VMULPS Z22, Z4, Z5
	VRNDSCALEPS $8, Z5, Z5
	VMULPS Z23, Z5, Z8
	VSUBPS Z8, Z4, Z6
	VMULPS Z24, Z5, Z8
	VSUBPS Z8, Z6, Z6
	VMULPS Z6, Z25, Z7
	VADDPS Z26, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z27, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z28, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z29, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z30, Z7, Z7
	VMULPS Z6, Z6, Z8
	VMULPS Z8, Z7, Z7
	VADDPS Z6, Z7, Z7
	VADDPS Z31, Z7, Z7
	VSCALEFPS Z5, Z7, Z4
	VMOVUPS Z4, (DI)(BX*1)
	VADDPS Z4, Z2, Z2
	ADDQ $64, BX
	JMP sm_exp
sm_exp_last:
	VMOVUPS.Z (SI)(BX*1), K1, Z4
	VSUBPS Z1, Z4, Z4
	VMINPS Z4, Z20, Z4
	VMAXPS Z4, Z21, Z4
	VMULPS Z22, Z4, Z5
	VRNDSCALEPS $8, Z5, Z5
	VMULPS Z23, Z5, Z8
	VSUBPS Z8, Z4, Z6
	VMULPS Z24, Z5, Z8
	VSUBPS Z8, Z6, Z6
	VMULPS Z6, Z25, Z7
	VADDPS Z26, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z27, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z28, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z29, Z7, Z7
	VMULPS Z6, Z7, Z7
	VADDPS Z30, Z7, Z7
	VMULPS Z6, Z6, Z8
	VMULPS Z8, Z7, Z7
	VADDPS Z6, Z7, Z7
	VADDPS Z31, Z7, Z7
	VSCALEFPS Z5, Z7, Z4
	VMOVUPS Z4, K1, (DI)(BX*1)
	VADDPS Z4, Z2, K1, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VADDPS Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPS X3, X2, X2
	VPERMILPS $0x4e, X2, X3
	VADDPS X3, X2, X2
	VPERMILPS $0xb1, X2, X3
	VADDPS X3, X2, X2
	VBROADCASTSS X2, Z3
	// quotients
	XORQ BX, BX
sm_div:
	CMPQ BX, R11
	JGE sm_div_last
	VMOVUPS (DI)(BX*1), Z4
	VDIVPS Z3, Z4, Z4
	VMOVUPS Z4, (DI)(BX*1)
	ADDQ $64, BX
	JMP sm_div
sm_div_last:
	VMOVUPS.Z (DI)(BX*1), K1, Z4
	VDIVPS Z3, Z4, Z4
	VMOVUPS Z4, K1, (DI)(BX*1)
	LEAQ (SI)(R10*4), SI
	LEAQ (DI)(R10*4), DI
	DECQ R9
	JMP sm_row
sm_done:
	VZEROUPPER
	RET
