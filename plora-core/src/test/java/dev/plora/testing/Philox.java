package dev.plora.testing;

/**
 * An independent Java Philox4x32-10 and the dropout rule of the kernels, to check the native
 * masks bit for bit: element i of stream (seed, stream) uses word i%4 of the block at counter
 * (i/4, stream) under key seed; it is dropped when that word is below p·2^32.
 */
public final class Philox {
  private Philox() {}

  public static int[] block(int c0, int c1, int c2, int c3, int k0, int k1) {
    for (int round = 0; round < 10; round++) {
      long p0 = 0xD2511F53L * (c0 & 0xffffffffL);
      long p1 = 0xCD9E8D57L * (c2 & 0xffffffffL);
      int n0 = (int) (p1 >>> 32) ^ c1 ^ k0;
      int n1 = (int) p1;
      int n2 = (int) (p0 >>> 32) ^ c3 ^ k1;
      int n3 = (int) p0;
      c0 = n0;
      c1 = n1;
      c2 = n2;
      c3 = n3;
      k0 += 0x9E3779B9;
      k1 += 0xBB67AE85;
    }
    return new int[] {c0, c1, c2, c3};
  }

  public static boolean keep(long seed, long stream, long i, float p) {
    double t = p * 4294967296.0;
    long threshold = t <= 0 ? 0 : t >= 4294967295.0 ? 0xffffffffL : (long) t;
    if (threshold == 0) {
      return true;
    }
    long blockIndex = i >>> 2;
    int[] r = block((int) blockIndex, (int) (blockIndex >>> 32), (int) stream, (int) (stream >>> 32), (int) seed,
        (int) (seed >>> 32));
    return (r[(int) (i & 3)] & 0xffffffffL) >= threshold;
  }
}
