#include "textflag.h"

// func cpuid(eax, ecx uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eax+0(FP), AX
	MOVL ecx+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv() uint32
TEXT ·xgetbv(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, ret+0(FP)
	RET

// func reluAVX512(dst, x *float32, n int)
// max(first=0, second=x) keeps a NaN x (and -0); adding +0 turns -0 into +0.
TEXT ·reluAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	VPXORD Z1, Z1, Z1
relu_loop:
	VMAXPS (SI), Z1, Z0
	VADDPS Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ relu_loop
	VZEROUPPER
	RET

// func maxScalarAVX512(dst, x *float32, n int, y float32)
// VMAXPS with first=y, second=x returns x when x is NaN or both are zero.
TEXT ·maxScalarAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	VBROADCASTSS y+24(FP), Z1
max_loop:
	VMAXPS (SI), Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ max_loop
	VZEROUPPER
	RET

// func minScalarAVX512(dst, x *float32, n int, y float32)
TEXT ·minScalarAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	VBROADCASTSS y+24(FP), Z1
min_loop:
	VMINPS (SI), Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ min_loop
	VZEROUPPER
	RET

// func addAVX512(dst, a, b *float32, n int)
TEXT ·addAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $4, CX
add_loop:
	VMOVUPS (SI), Z0
	VADDPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ add_loop
	VZEROUPPER
	RET

// func addScalarAVX512(dst, x *float32, n int, y float32)
TEXT ·addScalarAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	VBROADCASTSS y+24(FP), Z1
adds_loop:
	VMOVUPS (SI), Z0
	VADDPS Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ adds_loop
	VZEROUPPER
	RET

// func axpyAVX512(dst, x *float32, n int, a float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	VBROADCASTSS a+24(FP), Z1
axpy_loop:
	VMOVUPS (DI), Z0
	VFMADD231PS (SI), Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ axpy_loop
	VZEROUPPER
	RET

// func windowSumAVX512(dst, src *float32, n int, offs *int, w *float32, taps int, e *winEpi)
// dst[q] = chain over taps t of VFMADD231PS w[t]*src[offs[t]+q] from +0,
// then e (flags 2: + bias, 4: relu, 8: max(lo, x), 16: min(hi, x)); 64
// elements a pass, then 16 at a time under a mask.
TEXT ·windowSumAVX512(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ offs+24(FP), R8
	MOVQ w+32(FP), R9
	MOVQ taps+40(FP), R10
	MOVQ e+48(FP), R11
	MOVQ 0(R11), R12
	VBROADCASTSS 8(R11), Z28
	VBROADCASTSS 12(R11), Z29
	VBROADCASTSS 16(R11), Z30
	VPXORD Z31, Z31, Z31
ws_big:
	CMPQ CX, $64
	JLT ws_small
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ R8, R13
	MOVQ R9, R14
	MOVQ R10, DX
ws_tapb:
	MOVQ (R13), AX
	LEAQ (SI)(AX*4), BX
	VBROADCASTSS (R14), Z4
	VFMADD231PS (BX), Z4, Z0
	VFMADD231PS 64(BX), Z4, Z1
	VFMADD231PS 128(BX), Z4, Z2
	VFMADD231PS 192(BX), Z4, Z3
	ADDQ $8, R13
	ADDQ $4, R14
	DECQ DX
	JNZ ws_tapb
	TESTQ $2, R12
	JZ wsbr
	VADDPS Z28, Z0, Z0
	VADDPS Z28, Z1, Z1
	VADDPS Z28, Z2, Z2
	VADDPS Z28, Z3, Z3
wsbr:
	TESTQ $4, R12
	JZ wsbx
	VMAXPS Z0, Z31, Z0
	VADDPS Z31, Z0, Z0
	VMAXPS Z1, Z31, Z1
	VADDPS Z31, Z1, Z1
	VMAXPS Z2, Z31, Z2
	VADDPS Z31, Z2, Z2
	VMAXPS Z3, Z31, Z3
	VADDPS Z31, Z3, Z3
wsbx:
	TESTQ $8, R12
	JZ wsbn
	VMAXPS Z0, Z29, Z0
	VMAXPS Z1, Z29, Z1
	VMAXPS Z2, Z29, Z2
	VMAXPS Z3, Z29, Z3
wsbn:
	TESTQ $16, R12
	JZ wsbs
	VMINPS Z0, Z30, Z0
	VMINPS Z1, Z30, Z1
	VMINPS Z2, Z30, Z2
	VMINPS Z3, Z30, Z3
wsbs:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, CX
	JMP ws_big
ws_small:
	TESTQ CX, CX
	JLE ws_done
	MOVL $0xffff, AX
	CMPQ CX, $16
	JGE ws_mask
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
ws_mask:
	KMOVW AX, K1
	VPXORD Z0, Z0, Z0
	MOVQ R8, R13
	MOVQ R9, R14
	MOVQ R10, DX
ws_taps:
	MOVQ (R13), AX
	LEAQ (SI)(AX*4), BX
	VBROADCASTSS (R14), Z4
	VMOVUPS.Z (BX), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	ADDQ $8, R13
	ADDQ $4, R14
	DECQ DX
	JNZ ws_taps
	TESTQ $2, R12
	JZ wssr
	VADDPS Z28, Z0, Z0
wssr:
	TESTQ $4, R12
	JZ wssx
	VMAXPS Z0, Z31, Z0
	VADDPS Z31, Z0, Z0
wssx:
	TESTQ $8, R12
	JZ wssn
	VMAXPS Z0, Z29, Z0
wssn:
	TESTQ $16, R12
	JZ wsss
	VMINPS Z0, Z30, Z0
wsss:
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, CX
	JMP ws_small
ws_done:
	VZEROUPPER
	RET

// func windowMaxAVX512(dst, src *float32, n int, offs *int, taps int)
// dst[q] = the IR's maximum over taps t, in order from -Inf, of
// src[offs[t]+q]: acc if acc >= v or acc is NaN, else v. VMAXPS with v
// first gives v > acc ? v : acc; where v is NaN and acc is not, v.
TEXT ·windowMaxAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ offs+24(FP), R8
	MOVQ taps+32(FP), R10
	MOVL $0xff800000, AX
	VPBROADCASTD AX, Z30
wm_loop:
	TESTQ CX, CX
	JLE wm_done
	MOVL $0xffff, AX
	CMPQ CX, $16
	JGE wm_mask
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
wm_mask:
	KMOVW AX, K1
	VMOVAPS Z30, Z0
	MOVQ R8, R13
	MOVQ R10, DX
wm_taps:
	MOVQ (R13), AX
	LEAQ (SI)(AX*4), BX
	VMOVUPS.Z (BX), K1, Z5
	VCMPPS $3, Z5, Z5, K2
	VCMPPS $7, Z0, Z0, K2, K3
	VMAXPS Z0, Z5, Z0
	VMOVAPS Z5, K3, Z0
	ADDQ $8, R13
	DECQ DX
	JNZ wm_taps
	VMOVUPS Z0, K1, (DI)
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, CX
	JMP wm_loop
wm_done:
	VZEROUPPER
	RET

DATA every2idx<>+0(SB)/4, $0
DATA every2idx<>+4(SB)/4, $2
DATA every2idx<>+8(SB)/4, $4
DATA every2idx<>+12(SB)/4, $6
DATA every2idx<>+16(SB)/4, $8
DATA every2idx<>+20(SB)/4, $10
DATA every2idx<>+24(SB)/4, $12
DATA every2idx<>+28(SB)/4, $14
DATA every2idx<>+32(SB)/4, $16
DATA every2idx<>+36(SB)/4, $18
DATA every2idx<>+40(SB)/4, $20
DATA every2idx<>+44(SB)/4, $22
DATA every2idx<>+48(SB)/4, $24
DATA every2idx<>+52(SB)/4, $26
DATA every2idx<>+56(SB)/4, $28
DATA every2idx<>+60(SB)/4, $30
GLOBL every2idx<>(SB), RODATA, $64

// func every2AVX512(dst, src *float32, n int)
// dst[i] = src[2i] for i < n, reading src[:2n-1] only (masked at the end).
TEXT ·every2AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVDQU32 every2idx<>(SB), Z2
e2_loop:
	CMPQ CX, $16
	JLE e2_tail
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VPERMT2PS Z1, Z2, Z0
	VMOVUPS Z0, (DI)
	ADDQ $128, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP e2_loop
e2_tail:
	TESTQ CX, CX
	JLE e2_done
	// 2n-1 source elements: the first min(2n-1, 16) and the rest.
	MOVQ CX, BX
	SHLQ $1, BX
	DECQ BX
	MOVQ BX, DX
	CMPQ DX, $16
	JLE e2_m0
	MOVQ $16, DX
e2_m0:
	MOVL $1, AX
	MOVQ DX, R8
	MOVQ CX, R9
	MOVQ R8, CX
	SHLL CX, AX
	DECL AX
	CMPQ R8, $16
	JLT e2_k1
	MOVL $0xffff, AX
e2_k1:
	KMOVW AX, K1
	SUBQ R8, BX
	MOVL $1, AX
	MOVQ BX, CX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K2
	MOVQ R9, CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	CMPQ CX, $16
	JLT e2_k3
	MOVL $0xffff, AX
e2_k3:
	KMOVW AX, K3
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z 64(SI), K2, Z1
	VPERMT2PS Z1, Z2, Z0
	VMOVUPS Z0, K3, (DI)
e2_done:
	VZEROUPPER
	RET

DATA expconst<>+0(SB)/8, $0xc069000000000000 // clampLo = -200.0
DATA expconst<>+8(SB)/8, $0x4069000000000000 // clampHi = 200.0
DATA expconst<>+16(SB)/8, $0x3ff71547652b82fe // log2e = 1.4426950408889634
DATA expconst<>+24(SB)/8, $0x3fe62e42f0000000 // ln2hi = 0.6931471526622772
DATA expconst<>+32(SB)/8, $0x3e5df473de000000 // ln2lo = 2.7897668064547076e-08
DATA expconst<>+40(SB)/8, $0x3ff0000000000000 // c0 = 1.0
DATA expconst<>+48(SB)/8, $0x3ff0000000000000 // c1 = 1.0
DATA expconst<>+56(SB)/8, $0x3fe0000000000000 // c2 = 0.5
DATA expconst<>+64(SB)/8, $0x3fc5555555555555 // c3 = 0.16666666666666666
DATA expconst<>+72(SB)/8, $0x3fa5555555555555 // c4 = 0.041666666666666664
DATA expconst<>+80(SB)/8, $0x3f81111111111111 // c5 = 0.008333333333333333
DATA expconst<>+88(SB)/8, $0x3f56c16c16c16c17 // c6 = 0.001388888888888889
DATA expconst<>+96(SB)/8, $0x3f2a01a01a01a01a // c7 = 0.0001984126984126984
DATA expconst<>+104(SB)/8, $0x3efa01a01a01a01a // c8 = 2.48015873015873e-05
DATA expconst<>+112(SB)/8, $0x3ec71de3a556c734 // c9 = 2.7557319223985893e-06
DATA expconst<>+120(SB)/8, $0x3e927e4fb7789f5c // c10 = 2.755731922398589e-07
DATA expconst<>+128(SB)/8, $0x3e5ae64567f544e4 // c11 = 2.505210838544172e-08
DATA expconst<>+136(SB)/8, $0x3e21eed8eff8d898 // c12 = 2.08767569878681e-09
DATA expconst<>+144(SB)/8, $0x3de6124613a86d09 // c13 = 1.6059043836821613e-10
GLOBL expconst<>(SB), RODATA, $152

// func expAVX512(dst, x *float32, n int)
// dst[i] = float32(e^x[i]) evaluated in float64: x clamped to [-200, 200]
// (NaN kept), k = round(x/ln 2), r = x - k ln 2 (two FMAs), e^r by its
// Taylor series to degree 13 (Horner, FMAs), scaled by 2^k (VSCALEFPD),
// rounded to float32; 16 elements a pass, the last under a mask.
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSD expconst<>+0(SB), Z16
	VBROADCASTSD expconst<>+8(SB), Z17
	VBROADCASTSD expconst<>+16(SB), Z18
	VBROADCASTSD expconst<>+24(SB), Z19
	VBROADCASTSD expconst<>+32(SB), Z20
	VBROADCASTSD expconst<>+144(SB), Z21
	VBROADCASTSD expconst<>+136(SB), Z22
	VBROADCASTSD expconst<>+128(SB), Z23
	VBROADCASTSD expconst<>+120(SB), Z24
	VBROADCASTSD expconst<>+112(SB), Z25
	VBROADCASTSD expconst<>+104(SB), Z26
	VBROADCASTSD expconst<>+96(SB), Z27
	VBROADCASTSD expconst<>+88(SB), Z28
	VBROADCASTSD expconst<>+80(SB), Z29
	VBROADCASTSD expconst<>+72(SB), Z30
	VBROADCASTSD expconst<>+64(SB), Z31
exp_loop:
	TESTQ CX, CX
	JLE exp_done
	MOVL $0xffff, AX
	CMPQ CX, $16
	JGE exp_mask
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
exp_mask:
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VEXTRACTF32X8 $1, Z0, Y1
	VCVTPS2PD Y0, Z2
	VCVTPS2PD Y1, Z3
	VMAXPD Z2, Z16, Z2
	VMAXPD Z3, Z16, Z3
	VMINPD Z2, Z17, Z2
	VMINPD Z3, Z17, Z3
	VMULPD Z18, Z2, Z4
	VMULPD Z18, Z3, Z5
	VRNDSCALEPD $0, Z4, Z4
	VRNDSCALEPD $0, Z5, Z5
	VFNMADD231PD Z19, Z4, Z2
	VFNMADD231PD Z19, Z5, Z3
	VFNMADD231PD Z20, Z4, Z2
	VFNMADD231PD Z20, Z5, Z3
	VMOVAPD Z21, Z6
	VMOVAPD Z21, Z7
	VFMADD213PD Z22, Z2, Z6
	VFMADD213PD Z22, Z3, Z7
	VFMADD213PD Z23, Z2, Z6
	VFMADD213PD Z23, Z3, Z7
	VFMADD213PD Z24, Z2, Z6
	VFMADD213PD Z24, Z3, Z7
	VFMADD213PD Z25, Z2, Z6
	VFMADD213PD Z25, Z3, Z7
	VFMADD213PD Z26, Z2, Z6
	VFMADD213PD Z26, Z3, Z7
	VFMADD213PD Z27, Z2, Z6
	VFMADD213PD Z27, Z3, Z7
	VFMADD213PD Z28, Z2, Z6
	VFMADD213PD Z28, Z3, Z7
	VFMADD213PD Z29, Z2, Z6
	VFMADD213PD Z29, Z3, Z7
	VFMADD213PD Z30, Z2, Z6
	VFMADD213PD Z30, Z3, Z7
	VFMADD213PD Z31, Z2, Z6
	VFMADD213PD Z31, Z3, Z7
	VBROADCASTSD expconst<>+56(SB), Z8
	VFMADD213PD Z8, Z2, Z6
	VFMADD213PD Z8, Z3, Z7
	VBROADCASTSD expconst<>+48(SB), Z8
	VFMADD213PD Z8, Z2, Z6
	VFMADD213PD Z8, Z3, Z7
	VBROADCASTSD expconst<>+40(SB), Z8
	VFMADD213PD Z8, Z2, Z6
	VFMADD213PD Z8, Z3, Z7
	VSCALEFPD Z4, Z6, Z6
	VSCALEFPD Z5, Z7, Z7
	VCVTPD2PS Z6, Y6
	VCVTPD2PS Z7, Y7
	VINSERTF32X8 $1, Y7, Z6, Z6
	VMOVUPS Z6, K1, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP exp_loop
exp_done:
	VZEROUPPER
	RET

DATA erfconst<>+0(SB)/8, $0x3feb0ac160000000 // erx
DATA erfconst<>+8(SB)/8, $0x3fc06eba8214db68 // pp0
DATA erfconst<>+16(SB)/8, $0xbfd4cd7d691cb913 // pp1
DATA erfconst<>+24(SB)/8, $0xbf9d2a51dbd7194f // pp2
DATA erfconst<>+32(SB)/8, $0xbf77a291236668e4 // pp3
DATA erfconst<>+40(SB)/8, $0xbef8ead6120016ac // pp4
DATA erfconst<>+48(SB)/8, $0x3fd97779cddadc09 // qq1
DATA erfconst<>+56(SB)/8, $0x3fb0a54c5536ceba // qq2
DATA erfconst<>+64(SB)/8, $0x3f74d022c4d36b0f // qq3
DATA erfconst<>+72(SB)/8, $0x3f215dc9221c1a10 // qq4
DATA erfconst<>+80(SB)/8, $0xbed09c4342a26120 // qq5
DATA erfconst<>+88(SB)/8, $0xbf6359b8bef77538 // pa0
DATA erfconst<>+96(SB)/8, $0x3fda8d00ad92b34d // pa1
DATA erfconst<>+104(SB)/8, $0xbfd7d240fbb8c3f1 // pa2
DATA erfconst<>+112(SB)/8, $0x3fd45fca805120e4 // pa3
DATA erfconst<>+120(SB)/8, $0xbfbc63983d3e28ec // pa4
DATA erfconst<>+128(SB)/8, $0x3fa22a36599795eb // pa5
DATA erfconst<>+136(SB)/8, $0xbf61bf380a96073f // pa6
DATA erfconst<>+144(SB)/8, $0x3fbb3e6618eee323 // qa1
DATA erfconst<>+152(SB)/8, $0x3fe14af092eb6f33 // qa2
DATA erfconst<>+160(SB)/8, $0x3fb2635cd99fe9a7 // qa3
DATA erfconst<>+168(SB)/8, $0x3fc02660e763351f // qa4
DATA erfconst<>+176(SB)/8, $0x3f8bedc26b51dd1c // qa5
DATA erfconst<>+184(SB)/8, $0x3f888b545735151d // qa6
DATA erfconst<>+192(SB)/8, $0xbf843412600d6435 // ra0
DATA erfconst<>+200(SB)/8, $0xbfe63416e4ba7360 // ra1
DATA erfconst<>+208(SB)/8, $0xc0251e0441b0e726 // ra2
DATA erfconst<>+216(SB)/8, $0xc04f300ae4cba38d // ra3
DATA erfconst<>+224(SB)/8, $0xc0644cb184282266 // ra4
DATA erfconst<>+232(SB)/8, $0xc067135cebccabb2 // ra5
DATA erfconst<>+240(SB)/8, $0xc054526557e4d2f2 // ra6
DATA erfconst<>+248(SB)/8, $0xc023a0efc69ac25c // ra7
DATA erfconst<>+256(SB)/8, $0x4033a6b9bd707687 // sa1
DATA erfconst<>+264(SB)/8, $0x4061350c526ae721 // sa2
DATA erfconst<>+272(SB)/8, $0x407b290dd58a1a71 // sa3
DATA erfconst<>+280(SB)/8, $0x40842b1921ec2868 // sa4
DATA erfconst<>+288(SB)/8, $0x407ad02157700314 // sa5
DATA erfconst<>+296(SB)/8, $0x405b28a3ee48ae2c // sa6
DATA erfconst<>+304(SB)/8, $0x401a47ef8e484a93 // sa7
DATA erfconst<>+312(SB)/8, $0xbfaeeff2ee749a62 // sa8
DATA erfconst<>+320(SB)/8, $0xbf84341239e86f4a // rb0
DATA erfconst<>+328(SB)/8, $0xbfe993ba70c285de // rb1
DATA erfconst<>+336(SB)/8, $0xc031c209555f995a // rb2
DATA erfconst<>+344(SB)/8, $0xc064145d43c5ed98 // rb3
DATA erfconst<>+352(SB)/8, $0xc083ec881375f228 // rb4
DATA erfconst<>+360(SB)/8, $0xc09004616a2e5992 // rb5
DATA erfconst<>+368(SB)/8, $0xc07e384e9bdc383f // rb6
DATA erfconst<>+376(SB)/8, $0x403e568b261d5190 // sb1
DATA erfconst<>+384(SB)/8, $0x40745cae221b9f0a // sb2
DATA erfconst<>+392(SB)/8, $0x409802eb189d5118 // sb3
DATA erfconst<>+400(SB)/8, $0x40a8ffb7688c246a // sb4
DATA erfconst<>+408(SB)/8, $0x40a3f219cedf3be6 // sb5
DATA erfconst<>+416(SB)/8, $0x407da874e79fe763 // sb6
DATA erfconst<>+424(SB)/8, $0xc03670e242712d62 // sb7
DATA erfconst<>+432(SB)/8, $0x3ff0000000000000 // one
DATA erfconst<>+440(SB)/8, $0x0 // zero
DATA erfconst<>+448(SB)/8, $0x3feb000000000000 // c084
DATA erfconst<>+456(SB)/8, $0x3ff4000000000000 // c125
DATA erfconst<>+464(SB)/8, $0x4018000000000000 // c6
DATA erfconst<>+472(SB)/8, $0x4006db6db6db6db7 // c1o035
DATA erfconst<>+480(SB)/8, $0x3fe2000000000000 // c05625
DATA erfconst<>+488(SB)/8, $0x7fffffffffffffff // absmask
DATA erfconst<>+496(SB)/8, $0xffffffff00000000 // hi32
DATA erfconst<>+504(SB)/8, $0x8000000000000000 // signbit
DATA erfconst<>+512(SB)/8, $0x3ff71547652b82fe // log2e
DATA erfconst<>+520(SB)/8, $0x3fe62e42f0000000 // ln2hi
DATA erfconst<>+528(SB)/8, $0x3e5df473de000000 // ln2lo
DATA erfconst<>+536(SB)/8, $0x3ff0000000000000 // e0
DATA erfconst<>+544(SB)/8, $0x3ff0000000000000 // e1
DATA erfconst<>+552(SB)/8, $0x3fe0000000000000 // e2
DATA erfconst<>+560(SB)/8, $0x3fc5555555555555 // e3
DATA erfconst<>+568(SB)/8, $0x3fa5555555555555 // e4
DATA erfconst<>+576(SB)/8, $0x3f81111111111111 // e5
DATA erfconst<>+584(SB)/8, $0x3f56c16c16c16c17 // e6
DATA erfconst<>+592(SB)/8, $0x3f2a01a01a01a01a // e7
DATA erfconst<>+600(SB)/8, $0x3efa01a01a01a01a // e8
DATA erfconst<>+608(SB)/8, $0x3ec71de3a556c734 // e9
DATA erfconst<>+616(SB)/8, $0x3e927e4fb7789f5c // e10
DATA erfconst<>+624(SB)/8, $0x3e5ae64567f544e4 // e11
DATA erfconst<>+632(SB)/8, $0x3e21eed8eff8d898 // e12
DATA erfconst<>+640(SB)/8, $0x3de6124613a86d09 // e13
GLOBL erfconst<>(SB), RODATA, $648

// func erfAVX512(dst, x *float32, n int)
// dst[i] = float32(math.Erf(float64(x[i]))): Go's algorithm (FreeBSD's
// s_erf.c) in float64, every branch evaluated with its separately rounded
// products and sums (as Go computes them) and blended by |x|, the exps of
// erfc's branch by the series of expAVX512; 8 elements a pass, masked.
TEXT ·erfAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
erf_loop:
	TESTQ CX, CX
	JLE erf_done
	MOVL $0xff, AX
	CMPQ CX, $8
	JGE erf_mask
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
erf_mask:
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Y0
	VCVTPS2PD Y0, Z0
	VBROADCASTSD erfconst<>+488(SB), Z30
	VANDPD Z30, Z0, Z1
	VMULPD Z1, Z1, Z2
	VBROADCASTSD erfconst<>+40(SB), Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+32(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+24(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+16(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+8(SB), Z31
	VADDPD Z31, Z3, Z3
	VBROADCASTSD erfconst<>+80(SB), Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+72(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+64(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+56(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+48(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+432(SB), Z31
	VADDPD Z31, Z4, Z4
	VDIVPD Z4, Z3, Z3
	VMULPD Z3, Z1, Z3
	VADDPD Z3, Z1, Z5
	VBROADCASTSD erfconst<>+432(SB), Z31
	VSUBPD Z31, Z1, Z2
	VBROADCASTSD erfconst<>+136(SB), Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+128(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+120(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+112(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+104(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+96(SB), Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+88(SB), Z31
	VADDPD Z31, Z3, Z3
	VBROADCASTSD erfconst<>+184(SB), Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+176(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+168(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+160(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+152(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+144(SB), Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+432(SB), Z31
	VADDPD Z31, Z4, Z4
	VDIVPD Z4, Z3, Z3
	VBROADCASTSD erfconst<>+0(SB), Z31
	VADDPD Z3, Z31, Z6
	VMULPD Z1, Z1, Z2
	VBROADCASTSD erfconst<>+432(SB), Z31
	VDIVPD Z2, Z31, Z2
	VBROADCASTSD erfconst<>+472(SB), Z31
	VCMPPD $1, Z31, Z1, K2
	VBROADCASTSD erfconst<>+440(SB), Z3
	VBROADCASTSD erfconst<>+248(SB), K2, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+368(SB), Z31
	VBROADCASTSD erfconst<>+240(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+360(SB), Z31
	VBROADCASTSD erfconst<>+232(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+352(SB), Z31
	VBROADCASTSD erfconst<>+224(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+344(SB), Z31
	VBROADCASTSD erfconst<>+216(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+336(SB), Z31
	VBROADCASTSD erfconst<>+208(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+328(SB), Z31
	VBROADCASTSD erfconst<>+200(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VMULPD Z2, Z3, Z3
	VBROADCASTSD erfconst<>+320(SB), Z31
	VBROADCASTSD erfconst<>+192(SB), K2, Z31
	VADDPD Z31, Z3, Z3
	VBROADCASTSD erfconst<>+440(SB), Z4
	VBROADCASTSD erfconst<>+312(SB), K2, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+424(SB), Z31
	VBROADCASTSD erfconst<>+304(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+416(SB), Z31
	VBROADCASTSD erfconst<>+296(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+408(SB), Z31
	VBROADCASTSD erfconst<>+288(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+400(SB), Z31
	VBROADCASTSD erfconst<>+280(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+392(SB), Z31
	VBROADCASTSD erfconst<>+272(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+384(SB), Z31
	VBROADCASTSD erfconst<>+264(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+376(SB), Z31
	VBROADCASTSD erfconst<>+256(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VMULPD Z2, Z4, Z4
	VBROADCASTSD erfconst<>+432(SB), Z31
	VBROADCASTSD erfconst<>+432(SB), K2, Z31
	VADDPD Z31, Z4, Z4
	VDIVPD Z4, Z3, Z3
	VBROADCASTSD erfconst<>+496(SB), Z31
	VANDPD Z31, Z1, Z7
	VMULPD Z7, Z7, Z8
	VXORPD Z9, Z9, Z9
	VSUBPD Z8, Z9, Z8
	VBROADCASTSD erfconst<>+480(SB), Z31
	VSUBPD Z31, Z8, Z8
	VSUBPD Z1, Z7, Z9
	VADDPD Z1, Z7, Z10
	VMULPD Z10, Z9, Z9
	VADDPD Z3, Z9, Z9
	VBROADCASTSD erfconst<>+512(SB), Z12
	VMULPD Z12, Z8, Z12
	VRNDSCALEPD $0, Z12, Z12
	VMOVAPD Z8, Z13
	VBROADCASTSD erfconst<>+520(SB), Z14
	VFNMADD231PD Z14, Z12, Z13
	VBROADCASTSD erfconst<>+528(SB), Z14
	VFNMADD231PD Z14, Z12, Z13
	VBROADCASTSD erfconst<>+640(SB), Z11
	VBROADCASTSD erfconst<>+632(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+624(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+616(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+608(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+600(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+592(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+584(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+576(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+568(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+560(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+552(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+544(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VBROADCASTSD erfconst<>+536(SB), Z14
	VFMADD213PD Z14, Z13, Z11
	VSCALEFPD Z12, Z11, Z11
	VBROADCASTSD erfconst<>+512(SB), Z12
	VMULPD Z12, Z9, Z12
	VRNDSCALEPD $0, Z12, Z12
	VMOVAPD Z9, Z13
	VBROADCASTSD erfconst<>+520(SB), Z14
	VFNMADD231PD Z14, Z12, Z13
	VBROADCASTSD erfconst<>+528(SB), Z14
	VFNMADD231PD Z14, Z12, Z13
	VBROADCASTSD erfconst<>+640(SB), Z15
	VBROADCASTSD erfconst<>+632(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+624(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+616(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+608(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+600(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+592(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+584(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+576(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+568(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+560(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+552(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+544(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VBROADCASTSD erfconst<>+536(SB), Z14
	VFMADD213PD Z14, Z13, Z15
	VSCALEFPD Z12, Z15, Z15
	VMULPD Z15, Z11, Z11
	VDIVPD Z1, Z11, Z11
	VBROADCASTSD erfconst<>+432(SB), Z31
	VSUBPD Z11, Z31, Z11
	VMOVAPD Z31, Z16
	VBROADCASTSD erfconst<>+464(SB), Z30
	VCMPPD $1, Z30, Z1, K3
	VMOVAPD Z11, K3, Z16
	VBROADCASTSD erfconst<>+456(SB), Z30
	VCMPPD $1, Z30, Z1, K3
	VMOVAPD Z6, K3, Z16
	VBROADCASTSD erfconst<>+448(SB), Z30
	VCMPPD $1, Z30, Z1, K3
	VMOVAPD Z5, K3, Z16
	VBROADCASTSD erfconst<>+504(SB), Z30
	VANDPD Z30, Z0, Z17
	VXORPD Z17, Z16, Z16
	VCMPPD $3, Z0, Z0, K3
	VMOVAPD Z0, K3, Z16
	VCVTPD2PS Z16, Y16
	VMOVUPS Y16, K1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP erf_loop
erf_done:
	VZEROUPPER
	RET
