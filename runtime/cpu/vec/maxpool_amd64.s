#include "textflag.h"

DATA mpEven<>+0(SB)/4, $0
DATA mpEven<>+4(SB)/4, $2
DATA mpEven<>+8(SB)/4, $4
DATA mpEven<>+12(SB)/4, $6
DATA mpEven<>+16(SB)/4, $8
DATA mpEven<>+20(SB)/4, $10
DATA mpEven<>+24(SB)/4, $12
DATA mpEven<>+28(SB)/4, $14
DATA mpEven<>+32(SB)/4, $16
DATA mpEven<>+36(SB)/4, $18
DATA mpEven<>+40(SB)/4, $20
DATA mpEven<>+44(SB)/4, $22
DATA mpEven<>+48(SB)/4, $24
DATA mpEven<>+52(SB)/4, $26
DATA mpEven<>+56(SB)/4, $28
DATA mpEven<>+60(SB)/4, $30
GLOBL mpEven<>(SB), RODATA, $64

// func maxpoolAVX512(dst, img *float32, rowOff *int64, tab *dwTap, geom *dwGeom)
// Each result: the IR's maximum over the taps (kh, kw) in order, from
// -Inf, of the image elements the taps see (acc if acc >= v or acc is
// NaN, else v); taps outside the image (-Inf) leave it as it is. The
// geometry and loads are depthwiseAVX512's; a tap updates only the result
// lanes whose element is inside the image (the tap's mo mask).
TEXT ·maxpoolAVX512(SB), NOSPLIT, $32-40
	MOVL $0xff800000, AX
	VPBROADCASTD AX, Z30
	VMOVDQU32 mpEven<>(SB), Z27
	MOVQ img+8(FP), SI
	MOVQ $0, 0(SP)
mp_group:
	MOVQ geom+32(FP), AX
	MOVQ 0(AX), BX
	MOVQ 0(SP), CX
	CMPQ CX, BX
	JGE mp_done
	SUBQ CX, BX
	CMPQ BX, $4
	JLE mp_nu
	MOVQ $4, BX
mp_nu:
	MOVQ BX, 16(SP)
	MOVQ rowOff+16(FP), R14
	IMULQ 40(AX), CX
	ADDQ CX, R14
	MOVQ $0, 8(SP)
mp_chunk:
	MOVQ geom+32(FP), AX
	MOVQ 8(SP), CX
	CMPQ CX, 16(AX)
	JGE mp_next_group
	MOVQ 32(AX), BX
	IMULQ CX, BX
	SHLQ $7, BX
	ADDQ tab+24(FP), BX
	MOVQ BX, 24(SP)
	VMOVAPS Z30, Z0
	VMOVAPS Z30, Z1
	VMOVAPS Z30, Z2
	VMOVAPS Z30, Z3
	MOVQ R14, R13
	MOVQ 24(AX), DX
mp_kh:
	MOVQ geom+32(FP), AX
	MOVQ 72(AX), R12
	MOVQ 40(AX), AX
	MOVQ (R13), R8
	MOVQ (R13)(AX*1), R9
	MOVQ (R13)(AX*2), DI
	LEAQ (AX)(AX*2), AX
	MOVQ (R13)(AX*1), R11
	MOVQ R8, AX
	ORQ R9, AX
	ORQ DI, AX
	ORQ R11, AX
	BTQ $62, AX
	JCS mp_slow

	BTQ $61, R8
	LEAQ (SI)(R8*4), R8
	CMOVQCS R12, R8
	BTQ $61, R9
	LEAQ (SI)(R9*4), R9
	CMOVQCS R12, R9
	BTQ $61, DI
	LEAQ (SI)(DI*4), DI
	CMOVQCS R12, DI
	BTQ $61, R11
	LEAQ (SI)(R11*4), R11
	CMOVQCS R12, R11
	MOVQ 24(SP), BX
	MOVQ geom+32(FP), AX
	MOVQ 32(AX), CX
	CMPQ 56(AX), $0
	JNE mp_fast2
mp_fast1:
	MOVQ 0(BX), AX
	KMOVW 16(BX), K7
	KMOVW K7, K4
	CMPQ R8, R12
	JNE mp_fast1_r0
	KXORW K4, K4, K4
mp_fast1_r0:
	VMOVUPS (R8)(AX*4), Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z0, Z0, K5, K6
	VMAXPS Z0, Z5, K4, Z0
	VMOVAPS Z5, K6, Z0
	KMOVW K7, K4
	CMPQ R9, R12
	JNE mp_fast1_r1
	KXORW K4, K4, K4
mp_fast1_r1:
	VMOVUPS (R9)(AX*4), Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z1, Z1, K5, K6
	VMAXPS Z1, Z5, K4, Z1
	VMOVAPS Z5, K6, Z1
	KMOVW K7, K4
	CMPQ DI, R12
	JNE mp_fast1_r2
	KXORW K4, K4, K4
mp_fast1_r2:
	VMOVUPS (DI)(AX*4), Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z2, Z2, K5, K6
	VMAXPS Z2, Z5, K4, Z2
	VMOVAPS Z5, K6, Z2
	KMOVW K7, K4
	CMPQ R11, R12
	JNE mp_fast1_r3
	KXORW K4, K4, K4
mp_fast1_r3:
	VMOVUPS (R11)(AX*4), Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z3, Z3, K5, K6
	VMAXPS Z3, Z5, K4, Z3
	VMOVAPS Z5, K6, Z3
	SUBQ $-128, BX
	DECQ CX
	JNZ mp_fast1
	JMP mp_kh_next
mp_fast2:
	MOVQ 0(BX), AX
	KMOVW 16(BX), K7
	KMOVW K7, K4
	CMPQ R8, R12
	JNE mp_fast2_r0
	KXORW K4, K4, K4
mp_fast2_r0:
	VMOVUPS (R8)(AX*4), Z5
	VMOVUPS 64(R8)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z0, Z0, K5, K6
	VMAXPS Z0, Z5, K4, Z0
	VMOVAPS Z5, K6, Z0
	KMOVW K7, K4
	CMPQ R9, R12
	JNE mp_fast2_r1
	KXORW K4, K4, K4
mp_fast2_r1:
	VMOVUPS (R9)(AX*4), Z5
	VMOVUPS 64(R9)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z1, Z1, K5, K6
	VMAXPS Z1, Z5, K4, Z1
	VMOVAPS Z5, K6, Z1
	KMOVW K7, K4
	CMPQ DI, R12
	JNE mp_fast2_r2
	KXORW K4, K4, K4
mp_fast2_r2:
	VMOVUPS (DI)(AX*4), Z5
	VMOVUPS 64(DI)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z2, Z2, K5, K6
	VMAXPS Z2, Z5, K4, Z2
	VMOVAPS Z5, K6, Z2
	KMOVW K7, K4
	CMPQ R11, R12
	JNE mp_fast2_r3
	KXORW K4, K4, K4
mp_fast2_r3:
	VMOVUPS (R11)(AX*4), Z5
	VMOVUPS 64(R11)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z3, Z3, K5, K6
	VMAXPS Z3, Z5, K4, Z3
	VMOVAPS Z5, K6, Z3
	SUBQ $-128, BX
	DECQ CX
	JNZ mp_fast2
	JMP mp_kh_next
mp_slow:
	BTRQ $62, R8
	BTRQ $62, R9
	BTRQ $62, DI
	BTRQ $62, R11
	MOVQ 24(SP), BX
	MOVQ geom+32(FP), AX
	MOVQ 32(AX), CX
	CMPQ 56(AX), $0
	JNE mp_slow2
mp_slow1:
	MOVQ 0(BX), AX
	KMOVW 8(BX), K1
	KMOVW 16(BX), K4
	BTQ $61, R8
	JCS mp_slow1_n0
	LEAQ (R8)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z0, Z0, K5, K6
	VMAXPS Z0, Z5, K4, Z0
	VMOVAPS Z5, K6, Z0
mp_slow1_n0:
	BTQ $61, R9
	JCS mp_slow1_n1
	LEAQ (R9)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z1, Z1, K5, K6
	VMAXPS Z1, Z5, K4, Z1
	VMOVAPS Z5, K6, Z1
mp_slow1_n1:
	BTQ $61, DI
	JCS mp_slow1_n2
	LEAQ (DI)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z2, Z2, K5, K6
	VMAXPS Z2, Z5, K4, Z2
	VMOVAPS Z5, K6, Z2
mp_slow1_n2:
	BTQ $61, R11
	JCS mp_slow1_n3
	LEAQ (R11)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z3, Z3, K5, K6
	VMAXPS Z3, Z5, K4, Z3
	VMOVAPS Z5, K6, Z3
mp_slow1_n3:
	SUBQ $-128, BX
	DECQ CX
	JNZ mp_slow1
	JMP mp_kh_next
mp_slow2:
	MOVQ 0(BX), AX
	KMOVW 8(BX), K1
	KMOVW 12(BX), K2
	KMOVW 16(BX), K4
	BTQ $61, R8
	JCS mp_slow2_n0
	LEAQ (R8)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z0, Z0, K5, K6
	VMAXPS Z0, Z5, K4, Z0
	VMOVAPS Z5, K6, Z0
mp_slow2_n0:
	BTQ $61, R9
	JCS mp_slow2_n1
	LEAQ (R9)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z1, Z1, K5, K6
	VMAXPS Z1, Z5, K4, Z1
	VMOVAPS Z5, K6, Z1
mp_slow2_n1:
	BTQ $61, DI
	JCS mp_slow2_n2
	LEAQ (DI)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z2, Z2, K5, K6
	VMAXPS Z2, Z5, K4, Z2
	VMOVAPS Z5, K6, Z2
mp_slow2_n2:
	BTQ $61, R11
	JCS mp_slow2_n3
	LEAQ (R11)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VCMPPS $3, Z5, Z5, K4, K5
	VCMPPS $7, Z3, Z3, K5, K6
	VMAXPS Z3, Z5, K4, Z3
	VMOVAPS Z5, K6, Z3
mp_slow2_n3:
	SUBQ $-128, BX
	DECQ CX
	JNZ mp_slow2
	JMP mp_kh_next
mp_kh_next:
	MOVQ geom+32(FP), AX
	ADDQ 48(AX), R13
	DECQ DX
	JNZ mp_kh
	MOVQ geom+32(FP), AX
	MOVL $0xffff, BX
	MOVQ 8(SP), CX
	MOVQ 16(AX), DX
	DECQ DX
	CMPQ CX, DX
	JNE mp_mask
	MOVQ 64(AX), BX
mp_mask:
	KMOVW BX, K3
	MOVQ 8(AX), R9
	MOVQ 0(SP), DI
	IMULQ R9, DI
	SHLQ $4, CX
	ADDQ CX, DI
	SHLQ $2, DI
	ADDQ dst+0(FP), DI
	SHLQ $2, R9
	MOVQ 16(SP), DX
	VMOVUPS Z0, K3, (DI)
	CMPQ DX, $1
	JLE mp_stored
	ADDQ R9, DI
	VMOVUPS Z1, K3, (DI)
	CMPQ DX, $2
	JLE mp_stored
	ADDQ R9, DI
	VMOVUPS Z2, K3, (DI)
	CMPQ DX, $3
	JLE mp_stored
	ADDQ R9, DI
	VMOVUPS Z3, K3, (DI)
mp_stored:
	INCQ 8(SP)
	JMP mp_chunk
mp_next_group:
	ADDQ $4, 0(SP)
	JMP mp_group
mp_done:
	VZEROUPPER
	RET
