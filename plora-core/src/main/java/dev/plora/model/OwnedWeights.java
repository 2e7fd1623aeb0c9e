package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The tensors a module owns — its own copies of the weights it was given — and the trainable
 * parameters among them: for each, an fp32 gradient and, when the weight is 16-bit, an fp32
 * master that the optimizer updates and copies back into the weight.
 */
final class OwnedWeights {
  private final Backend backend;
  private final List<Tensor> owned = new ArrayList<>();
  private final List<Parameter> parameters = new ArrayList<>();

  OwnedWeights(Backend backend) {
    this.backend = backend;
  }

  /** A copy of {@code source} that this owns. */
  private Tensor copy(Tensor source) {
    Tensor t = own(backend.allocate(source.rows(), source.cols(), source.dtype()));
    backend.copy(source, t);
    return t;
  }

  /**
   * A copy of {@code source} that this owns, and with {@code trainable} also parameter {@code name}
   * ({@link #grad} finds its gradient). On failure everything owned so far is freed, so a
   * constructor that adopts its weights first has nothing to undo.
   */
  Tensor adopt(Tensor source, String name, boolean trainable, Parameter.Role role) {
    try {
      Tensor copy = copy(source);
      if (trainable) {
        train(name, copy, role);
      }
      return copy;
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** The fp32 gradient of parameter {@code name}, or null when there is no such parameter. */
  Tensor grad(String name) {
    for (Parameter p : parameters) {
      if (p.name().equals(name)) {
        return p.grad();
      }
    }
    return null;
  }

  /** Makes {@code weight} (owned here) trainable as parameter {@code name}; returns its zeroed fp32 gradient. */
  private Tensor train(String name, Tensor weight, Parameter.Role role) {
    Tensor grad = own(backend.allocate(weight.rows(), weight.cols(), DType.F32).fill(0f));
    if (weight.dtype() == DType.F32) {
      parameters.add(new Parameter(name, weight, grad, null, role));
    } else {
      Tensor master = own(backend.allocate(weight.rows(), weight.cols(), DType.F32));
      backend.copy(weight, master);
      parameters.add(new Parameter(name, master, grad, weight, role));
    }
    return grad;
  }

  List<Parameter> parameters() {
    return List.copyOf(parameters);
  }

  private Tensor own(Tensor t) {
    owned.add(t);
    return t;
  }

  /** Frees every tensor owned; idempotent. */
  void close() {
    for (Tensor t : owned) {
      t.close();
    }
  }
}
