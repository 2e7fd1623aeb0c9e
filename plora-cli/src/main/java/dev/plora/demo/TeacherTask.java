package dev.plora.demo;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;

/**
 * The adaptation task, generated from a seed: a frozen "pretrained" MLP backbone of {@code layers}
 * linear layers of width {@code width} with GELU between them, and a target network whose weights
 * differ from the backbone's by full-rank updates Δ = U·diag(σ)·Vᵀ with a decaying spectrum
 * σᵢ ∝ 1/√(i+1) (U, V random orthogonal), scaled to {@code updateNorm}·‖W‖_F. The top r = 8
 * directions hold under half of each update's energy, so a rank-8 adapter cannot learn it all.
 * Inputs are standard normal; targets are the target network's outputs.
 */
public final class TeacherTask implements AutoCloseable {
  public final int width;
  public final int layers;
  /** Backbone weights W₀ per layer, [width, width] row-major. */
  public final float[][] backbone;
  /** The singular values of each layer's update (the same spectrum for every layer). */
  public final double[] updateSpectrum;
  public final Tensor trainX;
  public final Tensor trainY;
  public final Tensor valX;
  public final Tensor valY;
  private final TensorScope scope;

  public TeacherTask(Backend backend, DType dtype, long seed, int width, int layers, int trainSize, int valSize,
      double updateNorm) {
    this.width = width;
    this.layers = layers;
    SplittableRandom rng = new SplittableRandom(seed);
    backbone = new float[layers][];
    float[][] target = new float[layers][];
    updateSpectrum = new double[width];
    double harmonic = 0;
    for (int i = 0; i < width; i++) {
      harmonic += 1.0 / (i + 1);
    }
    for (int l = 0; l < layers; l++) {
      double[] w = gaussian(rng, width * width, 1.0 / Math.sqrt(width));
      double wNorm = Math.sqrt(dot(w, w));
      double sigma0 = updateNorm * wNorm / Math.sqrt(harmonic); // Σσᵢ² = σ₀²·H(width)
      double[] u = orthogonal(rng, width), v = orthogonal(rng, width);
      double[] t = w.clone();
      for (int i = 0; i < width; i++) {
        double s = sigma0 / Math.sqrt(i + 1);
        updateSpectrum[i] = s;
        for (int r = 0; r < width; r++) {
          double ur = s * u[i * width + r];
          for (int c = 0; c < width; c++) {
            t[r * width + c] += ur * v[i * width + c];
          }
        }
      }
      backbone[l] = toFloat(w);
      target[l] = toFloat(t);
    }
    scope = new TensorScope(backend);
    try {
      trainX = scope.fromArray(toFloat(gaussian(rng, trainSize * width, 1.0)), trainSize, width, dtype);
      valX = scope.fromArray(toFloat(gaussian(rng, valSize * width, 1.0)), valSize, width, dtype);
      trainY = scope.allocate(trainSize, width, dtype);
      valY = scope.allocate(valSize, width, dtype);
      label(backend, target, trainX, trainY);
      label(backend, target, valX, valY);
    } catch (RuntimeException e) {
      scope.close();
      throw e;
    }
  }

  /** y ← the target network applied to x, on the backend (GEMMs and GELU). */
  private void label(Backend backend, float[][] target, Tensor x, Tensor y) {
    try (TensorScope s = new TensorScope(backend)) {
      Tensor h = x;
      for (int l = 0; l < layers; l++) {
        Tensor w = s.fromArray(target[l], width, width, x.dtype());
        Tensor out = l == layers - 1 ? y : s.allocate(x.rows(), width, x.dtype());
        backend.gemm(false, h, true, w, 1f, 0f, out);
        if (l < layers - 1) {
          backend.gelu(out, out);
        }
        h = out;
      }
    }
  }

  /** Rows of an orthogonal matrix: Gram-Schmidt (twice, for accuracy) on Gaussian vectors. */
  private static double[] orthogonal(SplittableRandom rng, int n) {
    double[] q = gaussian(rng, n * n, 1.0);
    for (int i = 0; i < n; i++) {
      for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < i; j++) {
          double d = 0;
          for (int k = 0; k < n; k++) {
            d += q[i * n + k] * q[j * n + k];
          }
          for (int k = 0; k < n; k++) {
            q[i * n + k] -= d * q[j * n + k];
          }
        }
      }
      double norm = 0;
      for (int k = 0; k < n; k++) {
        norm += q[i * n + k] * q[i * n + k];
      }
      norm = Math.sqrt(norm);
      for (int k = 0; k < n; k++) {
        q[i * n + k] /= norm;
      }
    }
    return q;
  }

  private static double[] gaussian(SplittableRandom rng, int n, double std) {
    double[] v = new double[n];
    for (int i = 0; i < n; i += 2) {
      double u1 = 1 - rng.nextDouble(), u2 = rng.nextDouble();
      double r = Math.sqrt(-2 * Math.log(u1)) * std;
      v[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) {
        v[i + 1] = r * Math.sin(2 * Math.PI * u2);
      }
    }
    return v;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  private static float[] toFloat(double[] v) {
    float[] f = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      f[i] = (float) v[i];
    }
    return f;
  }

  @Override
  public void close() {
    scope.close();
  }
}
