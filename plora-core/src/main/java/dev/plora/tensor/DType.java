package dev.plora.tensor;

/**
 * Storage type of a tensor. Arithmetic always runs in fp32; BF16 and F16 are storage formats,
 * converted with round-to-nearest-even exactly as the native kernels do
 * ({@code native/include/plora/numerics.h}). I32 holds integers (token ids, labels): it is
 * copied, filled and moved to and from {@code int[]}, never computed on.
 */
public enum DType {
  F32(0, 4),
  BF16(1, 2),
  F16(2, 2),
  I32(3, 4);

  private final int code;
  private final int byteSize;

  DType(int code, int byteSize) {
    this.code = code;
    this.byteSize = byteSize;
  }

  /**
   * The value of {@code enum plora_dtype} in the native ABI; each backend checks at load that its
   * library agrees.
   */
  public int code() {
    return code;
  }

  public int byteSize() {
    return byteSize;
  }

  /** True for the dtypes kernels compute on: F32, BF16, F16. */
  public boolean isFloat() {
    return this != I32;
  }

  /** {@code value} rounded to this float dtype and back to fp32. */
  public float round(float value) {
    return switch (this) {
      case F32 -> value;
      case BF16 -> bf16ToFloat(floatToBf16(value));
      case F16 -> f16ToFloat(floatToF16(value));
      case I32 -> throw new IllegalArgumentException("dtype: I32 is not a float dtype; round is for F32, BF16, F16");
    };
  }

  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** Round to nearest even; NaN stays NaN, overflow rounds to infinity. */
  public static short floatToBf16(float value) {
    int u = Float.floatToRawIntBits(value);
    if ((u & 0x7fffffff) > 0x7f800000) {
      return (short) ((u >>> 16) | 0x0040);
    }
    u += 0x7fff + ((u >>> 16) & 1);
    return (short) (u >>> 16);
  }

  public static float f16ToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int man = h & 0x3ff;
    if (exp == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (man << 13));
    }
    if (exp == 0) {
      float v = man * 5.9604644775390625e-8f; // man * 2^-24, exact
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
  }

  /** Round to nearest even, with subnormals; overflow rounds to infinity, NaN stays NaN. */
  public static short floatToF16(float value) {
    int u = Float.floatToRawIntBits(value);
    int sign = (u >>> 16) & 0x8000;
    int a = u & 0x7fffffff;
    if (a > 0x7f800000) {
      return (short) (sign | 0x7e00 | ((a >>> 13) & 0x3ff));
    }
    if (a >= 0x477ff000) {
      return (short) (sign | 0x7c00);
    }
    if (a < 0x38800000) {
      if (a < 0x33000000) {
        return (short) sign;
      }
      int exp = a >>> 23;
      int man = (a & 0x7fffff) | 0x800000;
      int shift = 126 - exp;
      int half = 1 << (shift - 1);
      int rest = man & ((1 << shift) - 1);
      int r = man >>> shift;
      if (rest > half || (rest == half && (r & 1) != 0)) {
        r += 1;
      }
      return (short) (sign | r);
    }
    int r = a - 0x38000000;
    r += 0xfff + ((r >>> 13) & 1);
    return (short) (sign | (r >>> 13));
  }
}
