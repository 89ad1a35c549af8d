"""A NumPy .npy writer without NumPy, for fuzz/make-corpus."""
import struct

def npy(dtype, shape, values, fortran=False, version=1):
    shape_s = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    head = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (dtype, "True" if fortran else "False", shape_s)
    pre = 10 if version == 1 else 12
    pad = 64 - (pre + len(head) + 1) % 64
    head = (head + " " * (pad % 64) + "\n").encode()
    fmt = {"<f4": "f", "<f8": "d", "|u1": "B", "<i8": "q", "<i4": "i"}[dtype]
    size = struct.pack("<H", len(head)) if version == 1 else struct.pack("<I", len(head))
    return b"\x93NUMPY" + bytes([version, 0]) + size + head + struct.pack("<%d%s" % (len(values), fmt), *values)
