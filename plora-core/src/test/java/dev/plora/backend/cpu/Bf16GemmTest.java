package dev.plora.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.Reference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The two BF16 GEMM routes of the host backend, oneDNN's bf16 matmul and sgemm on widened
 * copies, on the same inputs against a float64 reference, element by element, with the error
 * bf16 inputs and fp32 accumulation allow: awkward shapes around the AMX tile sizes, all four
 * transposes, strided views, beta = 0 with c poisoned with NaN, beta ≠ 0, alpha ≠ 1, c in BF16
 * and F32.
 */
class Bf16GemmTest {
  private static final double U32 = 0x1p-24; // fp32 unit roundoff
  private static final double U16 = 0x1p-8; // bf16 unit roundoff

  private static final int[][] SHAPES = { // m, n, k
    {1, 1, 1}, {1, 37, 5}, {16, 16, 32}, {17, 33, 65}, {31, 1, 129}, {64, 64, 64}, {3, 130, 17}, {129, 67, 250},
    {47, 95, 1}, {100, 31, 301}};

  @Test
  void bothRoutesMatchFloat64Reference() {
    try (CpuBackend widened = new CpuBackend(Bf16Gemm.OPENBLAS); CpuBackend oneDnn = openOneDnn()) {
      assertEquals(Bf16Gemm.OPENBLAS, widened.bf16Gemm());
      SplittableRandom rng = new SplittableRandom(77);
      int cases = 0;
      for (int[] shape : SHAPES) {
        for (int variant = 0; variant < 16; variant++) {
          boolean transA = (variant & 1) != 0, transB = (variant & 2) != 0, strided = (variant & 4) != 0;
          DType outType = (variant & 8) != 0 ? DType.F32 : DType.BF16;
          float beta = switch (cases % 3) {
            case 0 -> 0f;
            case 1 -> 1f;
            default -> (float) (rng.nextDouble() * 2 - 1);
          };
          float alpha = cases % 2 == 0 ? 1f : (float) (rng.nextDouble() * 4 - 2);
          Case c = new Case(shape[0], shape[1], shape[2], transA, transB, strided, outType, alpha, beta, rng);
          c.check(widened);
          c.check(oneDnn);
          cases++;
        }
      }
      assertEquals(SHAPES.length * 16, cases);
    }
  }

  /** The oneDNN route writes c itself: no widened temporaries, nothing allocated per call. */
  @Test
  void oneDnnRouteAllocatesNothingPerCall() {
    try (CpuBackend backend = openOneDnn(); TensorScope scope = new TensorScope(backend)) {
      Tensor a = scope.allocate(70, 90, DType.BF16).fill(0.5f);
      Tensor b = scope.allocate(90, 40, DType.BF16).fill(0.25f);
      Tensor c = scope.allocate(70, 40, DType.BF16).fill(1f);
      backend.gemm(false, a, false, b, 1f, 1f, c); // builds the primitive
      long before = backend.allocations();
      backend.gemm(false, a, false, b, 1f, 1f, c);
      assertEquals(before, backend.allocations());
      assertEquals(1f + 2 * 0.5f * 0.25f * 90, c.toFloatArray()[0]);
    }
  }

  /** Where /proc/cpuinfo shows bf16 arithmetic, AUTO must find oneDNN usable (a broken load would hide here). */
  @Test
  void autoChoosesOneDnnWhereTheCpuHasBf16Arithmetic() throws IOException {
    assumeTrue(cpuHasBf16Arithmetic(), "this CPU has neither avx512_bf16 nor amx_bf16");
    try (CpuBackend backend = new CpuBackend(Bf16Gemm.AUTO)) {
      assertEquals(Bf16Gemm.ONEDNN, backend.bf16Gemm(), backend.describeBf16Gemm());
      assertTrue(backend.describeBf16Gemm().contains("oneDNN"), backend.describeBf16Gemm());
    }
  }

  @Test
  void settingsAreParsedAndBadValuesNamed() {
    assertEquals(Bf16Gemm.OPENBLAS, Bf16Gemm.parse("X", " OpenBLAS "));
    assertEquals(Bf16Gemm.ONEDNN, Bf16Gemm.parse("X", "onednn"));
    assertEquals(Bf16Gemm.AUTO, Bf16Gemm.parse("X", "auto"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Bf16Gemm.parse("-D" + Bf16Gemm.PROPERTY, "fast"));
    assertEquals("-Dplora.cpu.bf16gemm: expected auto, onednn or openblas, got 'fast'", e.getMessage());
  }

  private static CpuBackend openOneDnn() {
    try (CpuBackend auto = new CpuBackend(Bf16Gemm.AUTO)) {
      assumeTrue(auto.bf16Gemm() == Bf16Gemm.ONEDNN, "oneDNN unusable here: " + auto.describeBf16Gemm());
    }
    return new CpuBackend(Bf16Gemm.ONEDNN);
  }

  private static boolean cpuHasBf16Arithmetic() throws IOException {
    Path cpuinfo = Path.of("/proc/cpuinfo");
    if (!Files.isReadable(cpuinfo)) {
      return false;
    }
    return Files.readAllLines(cpuinfo).stream().filter(l -> l.startsWith("flags")).findFirst()
        .map(l -> (" " + l + " ").contains(" avx512_bf16 ") || (" " + l + " ").contains(" amx_bf16 ")).orElse(false);
  }

  /** One GEMM's inputs, reference and per-element error bound, run on any backend. */
  private static final class Case {
    final int m, n, k;
    final boolean transA, transB, strided;
    final DType outType;
    final float alpha, beta;
    final float[] av, bv, cv;
    final double[] ref, bound;
    final String label;

    Case(int m, int n, int k, boolean transA, boolean transB, boolean strided, DType outType, float alpha,
        float beta, SplittableRandom rng) {
      this.m = m;
      this.n = n;
      this.k = k;
      this.transA = transA;
      this.transB = transB;
      this.strided = strided;
      this.outType = outType;
      this.alpha = alpha;
      this.beta = beta;
      int ac = transA ? m : k, bc = transB ? k : n;
      av = Reference.random(rng, m * k, DType.BF16);
      bv = Reference.random(rng, k * n, DType.BF16);
      cv = beta == 0 ? Reference.nans(m * n) : Reference.random(rng, m * n, outType);
      ref = Reference.gemm(transA, av, ac, transB, bv, bc, alpha, beta, cv, m, n, k);
      // fp32 accumulation: |error| ≤ (k + 2)·u32·(|alpha|·Σ|a||b| + |beta||c|) (k products and sums,
      // alpha, beta), then one bf16 rounding of that result when c is BF16.
      bound = new double[m * n];
      for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
          double size = 0;
          for (int t = 0; t < k; t++) {
            size += Math.abs(Reference.at(av, ac, transA, i, t) * Reference.at(bv, bc, transB, t, j));
          }
          size = Math.abs(alpha) * size + (beta == 0 ? 0 : Math.abs(beta * cv[i * n + j]));
          double accumulated = (k + 2) * U32 * size;
          double rounded = outType == DType.BF16 ? U16 * (Math.abs(ref[i * n + j]) + accumulated) : 0;
          bound[i * n + j] = accumulated + rounded + Double.MIN_NORMAL;
        }
      }
      label = "m=" + m + " n=" + n + " k=" + k + " transA=" + transA + " transB=" + transB + " strided=" + strided
          + " c " + outType + " alpha=" + alpha + " beta=" + beta;
    }

    void check(CpuBackend backend) {
      String where = label + " on the " + backend.bf16Gemm().label() + " route";
      try (TensorScope scope = new TensorScope(backend)) {
        Tensor a = operand(scope, transA ? k : m, transA ? m : k);
        Tensor b = operand(scope, transB ? n : k, transB ? k : n);
        Tensor cParent = scope.allocate(m + 2, n + 3, outType).fill(Float.NaN); // padding must stay NaN
        Tensor c = cParent.view(1, 2, m, n);
        a.copyFrom(av);
        b.copyFrom(bv);
        c.copyFrom(cv);

        backend.gemm(transA, a, transB, b, alpha, beta, c);

        float[] out = c.toFloatArray();
        for (int e = 0; e < out.length; e++) {
          double error = Math.abs(out[e] - ref[e]);
          if (!(error <= bound[e])) {
            throw new AssertionError(where + ": c[" + e / n + "," + e % n + "] = " + out[e] + ", reference " + ref[e]
                + ", error " + error + " > bound " + bound[e]);
          }
        }
        float[] parent = cParent.toFloatArray();
        for (int i = 0; i < m + 2; i++) {
          for (int j = 0; j < n + 3; j++) {
            boolean inside = i >= 1 && i <= m && j >= 2 && j < n + 2;
            assertTrue(inside || Float.isNaN(parent[i * (n + 3) + j]), where + ": wrote outside c at " + i + "," + j);
          }
        }
      }
    }

    /** A fresh BF16 tensor, or (strided) a view into a wider, taller one. */
    private Tensor operand(TensorScope scope, int rows, int cols) {
      return strided ? scope.allocate(rows + 1, cols + 5, DType.BF16).view(1, 3, rows, cols)
          : scope.allocate(rows, cols, DType.BF16);
    }
  }
}
