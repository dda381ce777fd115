#!/usr/bin/python3
"""Writes depthwise_amd64.s and maxpool_amd64.s: vec.Plane's kernels.

Both walk a plane's results four rows by 16 columns at a time over the
same geometry (dwGeom, dwTap, the row entries of rowOff: depthwise.go) and
the same loads (whole where a row's loads stay inside the image, masked on
the rows flagged in rowOff, the even elements of 32 at stride 2); they
differ in what a tap does to a result (a fused multiply-add, or the IR's
maximum) and in the epilogue and stores.

    cd runtime/cpu/vec && /usr/bin/python3 window_gen.py
"""

P = ['R8', 'R9', 'DI', 'R11']  # the four result rows' row entries, then pointers


class Kernel:
    def __init__(self, prefix, geom):
        self.p, self.g = prefix, geom  # label prefix, the geometry argument
        self.out = []

    def w(self, s):
        self.out.append(s)


def even_table(k, name):
    k.w(f'DATA {name}<>+0(SB)/4, $0')
    for i in range(1, 16):
        k.w(f'DATA {name}<>+{4*i}(SB)/4, ${2*i}')
    k.w(f'GLOBL {name}<>(SB), RODATA, $64')


def loops(k, init):
    """The loops over groups of four result rows and chunks of 16 columns
    down to a tap row's four row entries, ending with the jump to the
    masked path (label p_slow); init sets up a chunk's accumulators."""
    p, g = k.p, k.g
    k.w(f'''\tMOVQ $0, 0(SP)
{p}_group:
\tMOVQ {g}, AX
\tMOVQ 0(AX), BX
\tMOVQ 0(SP), CX
\tCMPQ CX, BX
\tJGE {p}_done
\tSUBQ CX, BX
\tCMPQ BX, $4
\tJLE {p}_nu
\tMOVQ $4, BX
{p}_nu:
\tMOVQ BX, 16(SP)
\tMOVQ rowOff+16(FP), R14
\tIMULQ 40(AX), CX
\tADDQ CX, R14
\tMOVQ $0, 8(SP)
{p}_chunk:
\tMOVQ {g}, AX
\tMOVQ 8(SP), CX
\tCMPQ CX, 16(AX)
\tJGE {p}_next_group
\tMOVQ 32(AX), BX
\tIMULQ CX, BX
\tSHLQ $7, BX
\tADDQ tab+24(FP), BX
\tMOVQ BX, 24(SP)''')
    init()
    k.w(f'''\tMOVQ R14, R13
\tMOVQ 24(AX), DX
{p}_kh:
\tMOVQ {g}, AX
\tMOVQ 72(AX), R12
\tMOVQ 40(AX), AX
\tMOVQ (R13), R8
\tMOVQ (R13)(AX*1), R9
\tMOVQ (R13)(AX*2), DI
\tLEAQ (AX)(AX*2), AX
\tMOVQ (R13)(AX*1), R11
\tMOVQ R8, AX
\tORQ R9, AX
\tORQ DI, AX
\tORQ R11, AX
\tBTQ $62, AX
\tJCS {p}_slow''')


def taps(k, path, head, unit, tail):
    """The loop over a tap row's columns on the whole-load (path 'fast') or
    masked (path 'slow') path, its stride-1 and stride-2 copies; head(s2)
    loads the tap's masks and weight, unit(s2, j, reg, lbl) updates result
    row j, tail() steps the weights."""
    p, g = k.p, k.g
    if path == 'fast':
        for r in P:
            k.w(f'\tBTQ $61, {r}')
            k.w(f'\tLEAQ (SI)({r}*4), {r}')
            k.w(f'\tCMOVQCS R12, {r}')
    else:
        k.w(f'{p}_slow:')
        for r in P:
            k.w(f'\tBTRQ $62, {r}')
    k.w('\tMOVQ 24(SP), BX')
    k.w(f'\tMOVQ {g}, AX')
    k.w('\tMOVQ 32(AX), CX')
    k.w('\tCMPQ 56(AX), $0')
    k.w(f'\tJNE {p}_{path}2')
    for s2 in (False, True):
        lbl = f'{p}_{path}2' if s2 else f'{p}_{path}1'
        k.w(f'{lbl}:')
        k.w('\tMOVQ 0(BX), AX')
        head(s2)
        for j, r in enumerate(P):
            unit(s2, j, r, lbl)
        tail()
        k.w('\tSUBQ $-128, BX')
        k.w('\tDECQ CX')
        k.w(f'\tJNZ {lbl}')
        k.w(f'\tJMP {p}_kh_next')


def load(k, s2, addr, masked=False):
    """Loads the 16 elements a tap sees into Z5 from addr (its 32 at stride
    2, keeping the even ones), under masks K1 (and K2) when masked."""
    if masked:
        k.w(f'\tVMOVUPS.Z {addr}, K1, Z5')
        if s2:
            k.w(f'\tVMOVUPS.Z 64{addr}, K2, Z6')
    else:
        k.w(f'\tVMOVUPS {addr}, Z5')
        if s2:
            k.w(f'\tVMOVUPS 64{addr}, Z6')
    if s2:
        k.w('\tVPERMT2PS Z6, Z27, Z5')


def kh_next(k):
    p, g = k.p, k.g
    k.w(f'''{p}_kh_next:
\tMOVQ {g}, AX
\tADDQ 48(AX), R13
\tDECQ DX
\tJNZ {p}_kh''')


def store_prologue(k):
    """Sets DI to the chunk's first result, R9 to a row's bytes, DX to the
    rows to store and K3 (and BX) to the chunk's column mask."""
    p, g = k.p, k.g
    k.w(f'''\tMOVQ {g}, AX
\tMOVL $0xffff, BX
\tMOVQ 8(SP), CX
\tMOVQ 16(AX), DX
\tDECQ DX
\tCMPQ CX, DX
\tJNE {p}_mask
\tMOVQ 64(AX), BX
{p}_mask:
\tKMOVW BX, K3
\tMOVQ 8(AX), R9
\tMOVQ 0(SP), DI
\tIMULQ R9, DI
\tSHLQ $4, CX
\tADDQ CX, DI
\tSHLQ $2, DI
\tADDQ dst+0(FP), DI
\tSHLQ $2, R9
\tMOVQ 16(SP), DX''')


def stores(k, mask):
    """Stores the rows to store of Z0-Z3, under K3 when mask."""
    p = k.p
    m = ', K3' if mask else ''
    for j in range(4):
        if j > 0:
            k.w(f'\tCMPQ DX, ${j}')
            k.w(f'\tJLE {p}_stored')
            k.w('\tADDQ R9, DI')
        k.w(f'\tVMOVUPS Z{j}{m}, (DI)')


def epilogue_end(k):
    p = k.p
    k.w(f'''{p}_stored:
\tINCQ 8(SP)
\tJMP {p}_chunk
{p}_next_group:
\tADDQ $4, 0(SP)
\tJMP {p}_group
{p}_done:
\tVZEROUPPER
\tRET
''')


def depthwise():
    k = Kernel('dw', 'geom+40(FP)')
    k.w('''#include "textflag.h"

// Local frame: 0(SP) oh0, 8(SP) c, 16(SP) results rows to store, 24(SP)
// the chunk's first tap entry.
''')
    even_table(k, 'dwEven')
    k.w('''
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
\tMOVQ e+48(FP), AX
\tVBROADCASTSS 8(AX), Z28
\tVBROADCASTSS 12(AX), Z29
\tVBROADCASTSS 16(AX), Z30
\tVPXORD Z31, Z31, Z31
\tVMOVDQU32 dwEven<>(SB), Z27
\tMOVQ img+8(FP), SI''')

    def init():
        for j in range(4):
            k.w(f'\tVPXORD Z{j}, Z{j}, Z{j}')
        k.w('\tMOVQ w+32(FP), R10')
    loops(k, init)
    k.w('')

    def fast_unit(s2, j, r, lbl):
        load(k, s2, f'({r})(AX*4)')
        k.w('\tVANDPS 64(BX), Z5, Z5')
        k.w(f'\tVFMADD231PS Z5, Z4, Z{j}')

    def slow_unit(s2, j, r, lbl):
        # A padding row adds w*+0, as the zero-padded planes do.
        k.w(f'\tBTQ $61, {r}')
        k.w(f'\tJCS {lbl}_z{j}')
        k.w(f'\tLEAQ ({r})(AX*1), R12')
        load(k, s2, '(SI)(R12*4)', masked=True)
        k.w(f'\tVFMADD231PS Z5, Z4, Z{j}')
        k.w(f'\tJMP {lbl}_n{j}')
        k.w(f'{lbl}_z{j}:')
        k.w(f'\tVFMADD231PS Z31, Z4, Z{j}')
        k.w(f'{lbl}_n{j}:')

    def head(masked):
        def h(s2):
            if masked:
                k.w('\tKMOVW 8(BX), K1')
                if s2:
                    k.w('\tKMOVW 12(BX), K2')
            k.w('\tVBROADCASTSS (R10), Z4')
        return h
    taps(k, 'fast', head(False), fast_unit, lambda: k.w('\tADDQ $4, R10'))
    taps(k, 'slow', head(True), slow_unit, lambda: k.w('\tADDQ $4, R10'))
    kh_next(k)
    k.w('\tMOVQ e+48(FP), AX')
    k.w('\tMOVQ 0(AX), AX')
    k.w('\tTESTQ $2, AX')
    k.w('\tJZ dw_relu')
    for j in range(4):
        k.w(f'\tVADDPS Z28, Z{j}, Z{j}')
    k.w('dw_relu:')
    k.w('\tTESTQ $4, AX')
    k.w('\tJZ dw_max')
    for j in range(4):
        k.w(f'\tVMAXPS Z{j}, Z31, Z{j}')
        k.w(f'\tVADDPS Z31, Z{j}, Z{j}')
    k.w('dw_max:')
    k.w('\tTESTQ $8, AX')
    k.w('\tJZ dw_min')
    for j in range(4):
        k.w(f'\tVMAXPS Z{j}, Z29, Z{j}')
    k.w('dw_min:')
    k.w('\tTESTQ $16, AX')
    k.w('\tJZ dw_store')
    for j in range(4):
        k.w(f'\tVMINPS Z{j}, Z30, Z{j}')
    k.w('dw_store:')
    store_prologue(k)
    k.w('\tCMPQ BX, $0xffff')
    k.w('\tJNE dw_mstore')
    stores(k, False)
    k.w('\tJMP dw_stored')
    k.w('dw_mstore:')
    stores(k, True)
    epilogue_end(k)
    return k.out


def maxpool():
    k = Kernel('mp', 'geom+32(FP)')
    k.w('''#include "textflag.h"
''')
    even_table(k, 'mpEven')
    k.w('''
// func maxpoolAVX512(dst, img *float32, rowOff *int64, tab *dwTap, geom *dwGeom)
// Each result: the IR's maximum over the taps (kh, kw) in order, from
// -Inf, of the image elements the taps see (acc if acc >= v or acc is
// NaN, else v); taps outside the image (-Inf) leave it as it is. The
// geometry and loads are depthwiseAVX512's; a tap updates only the result
// lanes whose element is inside the image (the tap's mo mask).
TEXT ·maxpoolAVX512(SB), NOSPLIT, $32-40
\tMOVL $0xff800000, AX
\tVPBROADCASTD AX, Z30
\tVMOVDQU32 mpEven<>(SB), Z27
\tMOVQ img+8(FP), SI''')

    def init():
        for j in range(4):
            k.w(f'\tVMOVAPS Z30, Z{j}')
    loops(k, init)
    k.w('')

    def update(j):
        # The IR's maximum on the lanes of K4: VMAXPS, then v where v is
        # NaN and the result so far is not.
        k.w('\tVCMPPS $3, Z5, Z5, K4, K5')
        k.w(f'\tVCMPPS $7, Z{j}, Z{j}, K5, K6')
        k.w(f'\tVMAXPS Z{j}, Z5, K4, Z{j}')
        k.w(f'\tVMOVAPS Z5, K6, Z{j}')

    def fast_unit(s2, j, r, lbl):
        # A padding row (the zero row) updates no lane.
        k.w('\tKMOVW K7, K4')
        k.w(f'\tCMPQ {r}, R12')
        k.w(f'\tJNE {lbl}_r{j}')
        k.w('\tKXORW K4, K4, K4')
        k.w(f'{lbl}_r{j}:')
        load(k, s2, f'({r})(AX*4)')
        update(j)

    def slow_unit(s2, j, r, lbl):
        k.w(f'\tBTQ $61, {r}')
        k.w(f'\tJCS {lbl}_n{j}')
        k.w(f'\tLEAQ ({r})(AX*1), R12')
        load(k, s2, '(SI)(R12*4)', masked=True)
        update(j)
        k.w(f'{lbl}_n{j}:')

    def fast_head(s2):
        k.w('\tKMOVW 16(BX), K7')

    def slow_head(s2):
        k.w('\tKMOVW 8(BX), K1')
        if s2:
            k.w('\tKMOVW 12(BX), K2')
        k.w('\tKMOVW 16(BX), K4')
    taps(k, 'fast', fast_head, fast_unit, lambda: None)
    taps(k, 'slow', slow_head, slow_unit, lambda: None)
    kh_next(k)
    store_prologue(k)
    stores(k, True)
    epilogue_end(k)
    return k.out


for name, lines in (('depthwise_amd64.s', depthwise()), ('maxpool_amd64.s', maxpool())):
    with open(name, 'w') as f:
        f.write('// Code generated by window_gen.py; DO NOT EDIT.\n\n' + '\n'.join(lines))
