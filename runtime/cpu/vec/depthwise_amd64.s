#include "textflag.h"

// Local frame: 0(SP) oh0, 8(SP) c, 16(SP) results rows to store, 24(SP)
// the chunk's first tap entry.

DATA dwEven<>+0(SB)/4, $0
DATA dwEven<>+4(SB)/4, $2
DATA dwEven<>+8(SB)/4, $4
DATA dwEven<>+12(SB)/4, $6
DATA dwEven<>+16(SB)/4, $8
DATA dwEven<>+20(SB)/4, $10
DATA dwEven<>+24(SB)/4, $12
DATA dwEven<>+28(SB)/4, $14
DATA dwEven<>+32(SB)/4, $16
DATA dwEven<>+36(SB)/4, $18
DATA dwEven<>+40(SB)/4, $20
DATA dwEven<>+44(SB)/4, $22
DATA dwEven<>+48(SB)/4, $24
DATA dwEven<>+52(SB)/4, $26
DATA dwEven<>+56(SB)/4, $28
DATA dwEven<>+60(SB)/4, $30
GLOBL dwEven<>(SB), RODATA, $64

// func depthwiseAVX512(dst, img *float32, rowOff *int64, tab *dwTap, w *float32, geom *dwGeom, e *winEpi)
// Each result row oh, column ow: the chain over taps (kh, kw) in order,
// from +0, of VFMADD231PS w[kh*KW+kw] * x, where x is the image element
// the tap sees, or +0 outside the image; then e's epilogue (as
// windowSumAVX512's). Four result rows at a time, 16 columns each. A row
// entry of rowOff (by padded row) is the image row's element offset, or
// has bit 61 set (a padding row: the zero row of geom), or bit 62 (a row
// whose loads would leave the image: masked loads for it). Elsewhere the
// taps load 16 (32 at stride 2, then the even ones) elements whole and
// clear the lanes outside the image with the tap's lane mask.
TEXT ·depthwiseAVX512(SB), NOSPLIT, $32-56
	MOVQ e+48(FP), AX
	VBROADCASTSS 8(AX), Z28
	VBROADCASTSS 12(AX), Z29
	VBROADCASTSS 16(AX), Z30
	VPXORD Z31, Z31, Z31
	VMOVDQU32 dwEven<>(SB), Z27
	MOVQ img+8(FP), SI
	MOVQ $0, 0(SP)
dw_group:
	MOVQ geom+40(FP), AX
	MOVQ 0(AX), BX
	MOVQ 0(SP), CX
	CMPQ CX, BX
	JGE dw_done
	SUBQ CX, BX
	CMPQ BX, $4
	JLE dw_nu
	MOVQ $4, BX
dw_nu:
	MOVQ BX, 16(SP)
	MOVQ rowOff+16(FP), R14
	IMULQ 40(AX), CX
	ADDQ CX, R14
	MOVQ $0, 8(SP)
dw_chunk:
	MOVQ geom+40(FP), AX
	MOVQ 8(SP), CX
	CMPQ CX, 16(AX)
	JGE dw_next_group
	MOVQ 32(AX), BX
	IMULQ CX, BX
	SHLQ $7, BX
	ADDQ tab+24(FP), BX
	MOVQ BX, 24(SP)
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ w+32(FP), R10
	MOVQ R14, R13
	MOVQ 24(AX), DX
dw_kh:
	MOVQ geom+40(FP), AX
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
	JCS dw_slow

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
	MOVQ geom+40(FP), AX
	MOVQ 32(AX), CX
	CMPQ 56(AX), $0
	JNE dw_fast2
dw_fast1:
	MOVQ 0(BX), AX
	VBROADCASTSS (R10), Z4
	VMOVUPS (R8)(AX*4), Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z0
	VMOVUPS (R9)(AX*4), Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z1
	VMOVUPS (DI)(AX*4), Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z2
	VMOVUPS (R11)(AX*4), Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z3
	ADDQ $4, R10
	SUBQ $-128, BX
	DECQ CX
	JNZ dw_fast1
	JMP dw_kh_next
dw_fast2:
	MOVQ 0(BX), AX
	VBROADCASTSS (R10), Z4
	VMOVUPS (R8)(AX*4), Z5
	VMOVUPS 64(R8)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z0
	VMOVUPS (R9)(AX*4), Z5
	VMOVUPS 64(R9)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z1
	VMOVUPS (DI)(AX*4), Z5
	VMOVUPS 64(DI)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z2
	VMOVUPS (R11)(AX*4), Z5
	VMOVUPS 64(R11)(AX*4), Z6
	VPERMT2PS Z6, Z27, Z5
	VANDPS 64(BX), Z5, Z5
	VFMADD231PS Z5, Z4, Z3
	ADDQ $4, R10
	SUBQ $-128, BX
	DECQ CX
	JNZ dw_fast2
	JMP dw_kh_next
dw_slow:
	BTRQ $62, R8
	BTRQ $62, R9
	BTRQ $62, DI
	BTRQ $62, R11
	MOVQ 24(SP), BX
	MOVQ geom+40(FP), AX
	MOVQ 32(AX), CX
	CMPQ 56(AX), $0
	JNE dw_slow2
dw_slow1:
	MOVQ 0(BX), AX
	KMOVW 8(BX), K1
	VBROADCASTSS (R10), Z4
	BTQ $61, R8
	JCS dw_slow1_z0
	LEAQ (R8)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	JMP dw_slow1_n0
dw_slow1_z0:
	VFMADD231PS Z31, Z4, Z0
dw_slow1_n0:
	BTQ $61, R9
	JCS dw_slow1_z1
	LEAQ (R9)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VFMADD231PS Z5, Z4, Z1
	JMP dw_slow1_n1
dw_slow1_z1:
	VFMADD231PS Z31, Z4, Z1
dw_slow1_n1:
	BTQ $61, DI
	JCS dw_slow1_z2
	LEAQ (DI)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VFMADD231PS Z5, Z4, Z2
	JMP dw_slow1_n2
dw_slow1_z2:
	VFMADD231PS Z31, Z4, Z2
dw_slow1_n2:
	BTQ $61, R11
	JCS dw_slow1_z3
	LEAQ (R11)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VFMADD231PS Z5, Z4, Z3
	JMP dw_slow1_n3
dw_slow1_z3:
	VFMADD231PS Z31, Z4, Z3
dw_slow1_n3:
	ADDQ $4, R10
	SUBQ $-128, BX
	DECQ CX
	JNZ dw_slow1
	JMP dw_kh_next
dw_slow2:
	MOVQ 0(BX), AX
	KMOVW 8(BX), K1
	KMOVW 12(BX), K2
	VBROADCASTSS (R10), Z4
	BTQ $61, R8
	JCS dw_slow2_z0
	LEAQ (R8)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VFMADD231PS Z5, Z4, Z0
	JMP dw_slow2_n0
dw_slow2_z0:
	VFMADD231PS Z31, Z4, Z0
dw_slow2_n0:
	BTQ $61, R9
	JCS dw_slow2_z1
	LEAQ (R9)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VFMADD231PS Z5, Z4, Z1
	JMP dw_slow2_n1
dw_slow2_z1:
	VFMADD231PS Z31, Z4, Z1
dw_slow2_n1:
	BTQ $61, DI
	JCS dw_slow2_z2
	LEAQ (DI)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VFMADD231PS Z5, Z4, Z2
	JMP dw_slow2_n2
dw_slow2_z2:
	VFMADD231PS Z31, Z4, Z2
dw_slow2_n2:
	BTQ $61, R11
	JCS dw_slow2_z3
	LEAQ (R11)(AX*1), R12
	VMOVUPS.Z (SI)(R12*4), K1, Z5
	VMOVUPS.Z 64(SI)(R12*4), K2, Z6
	VPERMT2PS Z6, Z27, Z5
	VFMADD231PS Z5, Z4, Z3
	JMP dw_slow2_n3
dw_slow2_z3:
	VFMADD231PS Z31, Z4, Z3
dw_slow2_n3:
	ADDQ $4, R10
	SUBQ $-128, BX
	DECQ CX
	JNZ dw_slow2
	JMP dw_kh_next
dw_kh_next:
	MOVQ geom+40(FP), AX
	ADDQ 48(AX), R13
	DECQ DX
	JNZ dw_kh
	MOVQ e+48(FP), AX
	MOVQ 0(AX), AX
	TESTQ $2, AX
	JZ dw_relu
	VADDPS Z28, Z0, Z0
	VADDPS Z28, Z1, Z1
	VADDPS Z28, Z2, Z2
	VADDPS Z28, Z3, Z3
dw_relu:
	TESTQ $4, AX
	JZ dw_max
	VMAXPS Z0, Z31, Z0
	VADDPS Z31, Z0, Z0
	VMAXPS Z1, Z31, Z1
	VADDPS Z31, Z1, Z1
	VMAXPS Z2, Z31, Z2
	VADDPS Z31, Z2, Z2
	VMAXPS Z3, Z31, Z3
	VADDPS Z31, Z3, Z3
dw_max:
	TESTQ $8, AX
	JZ dw_min
	VMAXPS Z0, Z29, Z0
	VMAXPS Z1, Z29, Z1
	VMAXPS Z2, Z29, Z2
	VMAXPS Z3, Z29, Z3
dw_min:
	TESTQ $16, AX
	JZ dw_store
	VMINPS Z0, Z30, Z0
	VMINPS Z1, Z30, Z1
	VMINPS Z2, Z30, Z2
	VMINPS Z3, Z30, Z3
dw_store:
	MOVQ geom+40(FP), AX
	MOVL $0xffff, BX
	MOVQ 8(SP), CX
	MOVQ 16(AX), DX
	DECQ DX
	CMPQ CX, DX
	JNE dw_mask
	MOVQ 64(AX), BX
dw_mask:
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
	CMPQ BX, $0xffff
	JNE dw_mstore
	VMOVUPS Z0, (DI)
	CMPQ DX, $1
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z1, (DI)
	CMPQ DX, $2
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z2, (DI)
	CMPQ DX, $3
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z3, (DI)
	JMP dw_stored
dw_mstore:
	VMOVUPS Z0, K3, (DI)
	CMPQ DX, $1
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z1, K3, (DI)
	CMPQ DX, $2
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z2, K3, (DI)
	CMPQ DX, $3
	JLE dw_stored
	ADDQ R9, DI
	VMOVUPS Z3, K3, (DI)
dw_stored:
	INCQ 8(SP)
	JMP dw_chunk
dw_next_group:
	ADDQ $4, 0(SP)
	JMP dw_group
dw_done:
	VZEROUPPER
	RET
