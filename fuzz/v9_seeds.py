"""Writes the hand-made STFL v2/v5/v9 seeds of fuzz/corpus/load_bytecode and stfl_roundtrip.

Usage: python3 fuzz/v9_seeds.py DIR, then copy DIR/NAME to corpus/<target>/hand-NAME
(underscores as dashes). The layout is that of STFL v9 (header, constants, function records
with v5 parameter and return types, the client IO manifest); each seed is described above it.
"""
import struct, sys, os
out = sys.argv[1]
def u8(x): return struct.pack('<B', x)
def u16(x): return struct.pack('<H', x)
def u32(x): return struct.pack('<I', x)
def u64(x): return struct.pack('<Q', x)
def s(t): b=t.encode(); return u16(len(b))+b
INT64 = b'\x00\x01\x40'
def func(name, params, ptypes, ret, regs, code, labels=(), upvalues=(), parent=None):
    r = s(name)+u16(regs)+u16(len(params))+b''.join(s(p) for p in params)
    r += u16(len(ptypes))+b''.join(ptypes)+ret
    r += u16(len(upvalues))+b''.join(s(u) for u in upvalues)
    r += (u8(1)+s(parent)) if parent else u8(0)
    r += u16(len(labels))+b''.join(s(n)+u32(i) for n,i in labels)
    r += u32(len(code))+b''.join(code)
    return r
def ldi(d,c): return u8(1)+u32(d)+u32(c)
def ret(r): return u8(0x12)+u32(r)
def add(d,a,b): return u8(3)+u32(d)+u32(a)+u32(b)
def pusharg(r): return u8(0x13)+u32(r)
def call(n): return u8(0x11)+s(n)
def nop(): return u8(0x17)
def lds(d,slot): return u8(0x18)+u32(d)+u32(slot)
def sts(slot,r): return u8(0x19)+u32(slot)+u32(r)
ZERO_MANIFEST = u8(0)+u8(0)+u32(0)+u64(0)*4+u8(0)
def file(consts, funcs, manifest=ZERO_MANIFEST, version=9):
    return b'STFL'+u16(version)+u32(len(consts))+b''.join(consts)+u32(len(funcs))+b''.join(funcs)+manifest
def i64c(x): return u8(1)+struct.pack('<q', x)
def strc(t): b=t.encode(); return u8(11)+u32(len(b))+b
def floatc(x): return u8(9)+struct.pack('<d', x)
seeds = {}
# Spill slots: STS then LDS of the same slot, an unwritten slot (reads Unit), NOP.
seeds['v9_spill'] = file([i64c(7)], [func('main', [], [], INT64, 4,
    [ldi(1,0), nop(), sts(3,1), lds(2,3), lds(1,0), pusharg(1), call('print'), ret(2)])])
# Every FunctionType tag (0..14) in parameter and return types.
generic = b'\x0a'+s('Map')+u16(2)+b'\x0b'+s('K')+b'\x07\x01'
types = [INT64, b'\x00\x00\x08', b'\x01', b'\x02', b'\x03', b'\x04', b'\x06'+INT64,
         b'\x08\x02\x09'+s('Point'), generic, b'\x0c', b'\x0d', b'\x0e\x20']
params = ['p%d' % i for i in range(len(types))]
seeds['v9_types'] = file([floatc(0.005)], [
    func('main', [], [], b'\x05', 2, [ldi(1,0), pusharg(1), pusharg(1)] + [pusharg(1)]*(len(types)-2) + [call('typed'), ret(0)]),
    func('typed', params, types, b'\x0e\x10', len(types)+1, [add(len(types), 0, 1), ret(len(types))]),
])
# A manifest with clients, every ShareType, a demand and `dynamic` set; backend Avss,
# curve Secp256k1.
manifest = u8(1)+u8(4)+u32(2)
manifest += u64(0)+u32(2)+u8(0)+u32(64)+u8(1)+u32(64)+u32(16)+u32(1)+u8(2)+u32(32)
manifest += u64(1)+u32(0)+u32(0)
manifest += u64(3)+u64(2)+u64(1)+u64(5)+u8(1)
seeds['v9_manifest'] = file([strc('hi')], [func('main', [], [], b'\x02', 2, [ldi(1,0), ret(1)])], manifest)
# A store to the largest slot number: the spill vector must not grow without a limit.
seeds['v9_sts_huge_slot'] = file([i64c(1)], [func('main', [], [], INT64, 2,
    [ldi(1,0), sts(0xFFFFFFFF,1), lds(0,0xFFFFFFFF), ret(0)])])
# A version 2 file (manifest is only the client count) and a v5 one (types, no demand).
seeds['v2_manifest'] = file([i64c(2)], [s('main')+u16(2)+u16(0)+u16(0)+u8(0)+u16(0)+u32(2)+ldi(1,0)+ret(1)], u32(0), version=2)
seeds['v5_types'] = file([i64c(5)], [func('main', [], [], INT64, 2, [ldi(1,0), ret(1)])],
    u8(0)+u8(0)+u32(0), version=5)
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    open(os.path.join(out, name), 'wb').write(data)
    print(name, len(data))
