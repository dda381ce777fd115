#include "textflag.h"

DATA sumk<>+0(SB)/4, $0x80000000 // -0
GLOBL sumk<>(SB), RODATA, $4

// func sumRowAVX512(x *float32, n int) float32
// SumRow: 16 lanes from -0, VADDPS a pass (the last masked, merging), the
// lanes folded l+8, l+4, l+2, l+1.
TEXT ·sumRowAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS sumk<>+0(SB), Z0
sr_loop:
	CMPQ CX, $16
	JLE sr_last
	VADDPS (SI), Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP sr_loop
sr_last:
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1
	VADDPS (SI), Z0, K1, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VADDPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET
