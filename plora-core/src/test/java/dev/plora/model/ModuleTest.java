package dev.plora.model;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.BackendCases;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Names, paths, replacement, modes and closing of modules; Linear's argument checks. */
class ModuleTest {
  /** A two-level model: block.{up, down} and head, as a transformer would nest them. */
  static final class Block extends Module {
    Block(Linear up, Linear down) {
      register("up", up);
      register("down", down);
    }
  }

  static final class Model extends Module {
    final Block block;

    Model(Block block, Linear head) {
      this.block = register("block", block);
      register("head", head);
    }
  }

  private static Linear linear(TensorScope s, int n, int k, boolean trainable) {
    return new Linear(s.allocate(n, k, DType.F32).fill(0.5f), null, trainable);
  }

  @Test
  void pathsParametersModesReplacementAndClose() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend)) {
      Linear up = linear(s, 6, 4, true), down = linear(s, 4, 6, true), head = linear(s, 3, 4, false);
      Model model = new Model(new Block(up, down), head);
      assertEquals(List.of("block", "block.up", "block.down", "head"), List.copyOf(model.modules().keySet()));
      assertSame(down, model.module("block.down"));
      assertRefused(IllegalArgumentException.class, () -> model.module("block.side"), "block.side");
      assertRefused(IllegalArgumentException.class, () -> model.block.child("side"), "side", "[up, down]");
      assertEquals(2, model.parameters().size(), "the trainable weights of up and down; head is frozen");

      model.train(false);
      assertFalse(up.isTraining() || head.isTraining(), "eval mode reaches every descendant");
      LoraLinear wrapped = LoraLinear.create(up.weight(), null, LoraConfig.builder().r(2).build(), 0);
      Module old = model.block.replaceChild("up", wrapped);
      assertSame(up, old);
      assertSame(wrapped, model.module("block.up"));
      assertFalse(wrapped.isTraining(), "a replacement takes the parent's mode");
      old.close();
      assertEquals(3, model.parameters().size(), "down's weight, and A and B of the adapter");

      assertRefused(IllegalArgumentException.class, () -> new Block(linear(s, 2, 2, false), null), "'down'");
      model.close();
      assertTrue(wrapped.isClosed() && down.isClosed() && head.isClosed());
      model.close(); // idempotent
    }
  }

  /** Registers its children under the names given. */
  static final class Named extends Module {
    Named(List<String> names, List<Module> modules) {
      for (int i = 0; i < names.size(); i++) {
        register(names.get(i), modules.get(i));
      }
    }
  }

  @Test
  void childNamesAreCheckedAndUnique() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend)) {
      Linear a = linear(s, 2, 2, false), b = linear(s, 2, 2, false);
      assertRefused(IllegalArgumentException.class, () -> new Named(List.of("x.y"), List.of(a)), "'x.y'");
      assertRefused(IllegalArgumentException.class, () -> new Named(List.of(""), List.of(a)), "''");
      assertRefused(IllegalArgumentException.class, () -> new Named(List.of("head", "head"), List.of(a, b)), "'head'",
          "already registered");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void linearRefusesBadArgumentsBeforeAnyNativeCall(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        Backend other = new CpuBackend(); Linear layer = new Linear(s.allocate(5, 4, DType.F32).fill(1f), null, true)) {
      Tensor x = s.allocate(3, 4, DType.F32).fill(1f);
      Tensor y = s.allocate(3, 5, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> layer.forward(s.allocate(3, 3, DType.F32), y), "x", "[3,3]");
      assertRefused(IllegalArgumentException.class, () -> layer.forward(x, s.allocate(3, 4, DType.F32)), "y", "[3,4]");
      assertRefused(IllegalArgumentException.class, () -> layer.forward(s.allocate(3, 4, DType.BF16), y), "x", "BF16");
      try (Tensor foreign = other.allocate(3, 4, DType.F32)) {
        assertRefused(IllegalArgumentException.class, () -> layer.forward(foreign, y), "x", "belongs to backend");
      }
      assertRefused(IllegalArgumentException.class, () -> layer.forward(x, null), "y");
      assertAllNaN(y);
      assertRefused(IllegalStateException.class, () -> layer.backward(y, null), "forward pass first");
      layer.forward(x, y);
      Tensor dx = s.allocate(3, 4, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> layer.backward(s.allocate(2, 5, DType.F32), dx), "dy");
      assertRefused(IllegalArgumentException.class, () -> layer.backward(y, s.allocate(3, 5, DType.F32)), "dx");
      assertRefused(IllegalArgumentException.class, () -> layer.backward(y, x), "dx", "overlaps");
      assertAllNaN(dx);
      for (float g : layer.parameters().get(0).grad().toFloatArray()) {
        assertEquals(0f, g, "a refused backward accumulated a gradient");
      }
    }
  }
}
