# Regenerates the NumPy fixtures in this directory:
#   cd tensorio/testdata/numpy && python3 gen.py
# The committed files were written by NumPy 1.24.2 (Debian's python3-numpy).
import numpy as np

def save(name, a, **kw):
    with open(name, "wb") as f:
        np.lib.format.write_array(f, a, allow_pickle=False, **kw)

save("f4_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(1.5))
save("f8_3.npy", np.array([0.1, -2.5, 1e300], dtype="<f8"))
save("i4_2x2x2.npy", np.arange(-4, 4, dtype="<i4").reshape(2, 2, 2))
save("i8_4.npy", np.array([-(2**62), -1, 0, 2**62], dtype="<i8"))
save("b1_5.npy", np.array([True, False, True, True, False]))
save("f4_1.npy", np.array([7.0], dtype="<f4"))
save("i8_1x1.npy", np.array([[42]], dtype="<i8"))
save("scalar_f8.npy", np.array(3.25, dtype="<f8"))
save("scalar_b1.npy", np.array(True))
save("be_f4_2x3.npy", np.arange(6, dtype=">f4").reshape(2, 3) * np.float32(1.5))
save("be_f8_3.npy", np.array([0.1, -2.5, 1e300], dtype=">f8"))
save("be_i4_2x2x2.npy", np.arange(-4, 4, dtype=">i4").reshape(2, 2, 2))
save("be_i8_4.npy", np.array([-(2**62), -1, 0, 2**62], dtype=">i8"))
save("fortran_f4_2x3.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(1.5)))
save("fortran_i4_2x3x4.npy", np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4)))
save("v2_f4_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(1.5), version=(2, 0))
save("v3_f4_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(1.5), version=(3, 0))
save("empty_f4_0x3.npy", np.zeros((0, 3), dtype="<f4"))
save("f2_2.npy", np.array([1, 2], dtype="<f2"))
save("u1_2.npy", np.array([1, 2], dtype="u1"))

a = np.arange(6, dtype="<f4").reshape(2, 3)
b = np.array([1, 2, 3], dtype="<i8")
c = np.array(True)
np.savez("savez.npz", a=a, b=b, c=c)
np.savez_compressed("savez_compressed.npz", a=a, b=b, c=c)
