package dev.plora.data;

import java.util.Random;

/**
 * Seeded permutations, the same on every JVM: java.util.Random's generator is specified to the
 * bit, and the Fisher–Yates loop is this one.
 */
final class Shuffle {
  private Shuffle() {}

  /** A permutation of 0..n−1 drawn from stream {@code stream} of {@code seed}. */
  static int[] permutation(int n, long seed, long stream) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    Random random = new Random(mix(seed, stream));
    for (int i = n - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** SplitMix64's finaliser of seed and stream: nearby seeds and streams give unrelated sequences. */
  private static long mix(long seed, long stream) {
    long z = seed + (stream + 1) * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
