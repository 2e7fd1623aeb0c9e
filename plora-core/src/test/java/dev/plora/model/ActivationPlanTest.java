package dev.plora.model;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.ActivationSpec.Lifetime;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.Reference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Descriptions, layout, caching and recompute of activation plans. */
class ActivationPlanTest {
  private static final int IN = 7, HIDDEN = 9, OUT = 5, R = 3;

  /** Mlps side by side, as a transformer's blocks (only their plan is used here). */
  static final class Blocks extends Module {
    Blocks(List<Mlp> blocks) {
      register("blocks", new ModuleList<>(Mlp.class, blocks));
    }
  }

  /** LoRA (with dropout), a trainable Linear with a bias, LoRA: every kind of buffer. */
  private static Mlp model(TensorScope s, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    LoraConfig config = LoraConfig.builder().r(R).alpha(2 * R).dropout(0.25f).seed(5).build();
    LoraLinear l0 = LoraLinear.create(s.fromArray(Reference.random(rng, HIDDEN * IN, DType.F32), HIDDEN, IN,
        DType.F32), null, config, 0);
    Linear l1 = new Linear(s.fromArray(Reference.random(rng, HIDDEN * HIDDEN, DType.F32), HIDDEN, HIDDEN,
        DType.F32), s.fromArray(Reference.random(rng, HIDDEN, DType.F32), 1, HIDDEN, DType.F32), true);
    LoraLinear l2 = LoraLinear.create(s.fromArray(Reference.random(rng, OUT * HIDDEN, DType.F32), OUT, HIDDEN,
        DType.F32), null, config, 2);
    for (LoraLinear l : List.of(l0, l2)) {
      l.adapter().masterB().copyFrom(Reference.random(rng, l.outFeatures() * R, DType.F32));
      l.adapter().sync();
    }
    return new Mlp(List.of(l0, l1, l2));
  }

  @Test
  void modulesDescribeTheirBuffersByPath() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend); Mlp mlp = model(s, 1)) {
      Map<String, ActivationSpec> specs = new java.util.LinkedHashMap<>();
      mlp.activations(InputShape.ofRows(6)).forEach(a -> specs.put(a.name(), a));
      assertEquals(List.of("x0", "y0", "dy0", "x1", "y1", "dy1", "dx1", "x2", "y2", "dy2", "dx2", "layers.0.ss",
          "layers.0.ds", "layers.1.ones", "layers.2.ss", "layers.2.ds"), List.copyOf(specs.keySet()));
      assertEquals(ActivationSpec.kept("x0", 6, IN + R, DType.F32), specs.get("x0"), "LoRA's spare columns");
      assertEquals(ActivationSpec.recomputable("y1", 6, HIDDEN, DType.F32), specs.get("y1"));
      assertEquals(ActivationSpec.kept("y2", 6, OUT, DType.F32), specs.get("y2"), "the output is kept");
      assertEquals(ActivationSpec.scratch("dy2", 6, OUT + R, DType.F32), specs.get("dy2"));
      assertEquals(ActivationSpec.scratch("layers.1.ones", 6, 1, DType.F32), specs.get("layers.1.ones"));
      assertEquals(ActivationSpec.recomputable("layers.2.ss", 6, R, DType.F32), specs.get("layers.2.ss"));
    }
  }

  @Test
  void onePlanPerShapeInOneAlignedArenaWithKeptBuffersApart() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend); Mlp mlp = model(s, 1)) {
      ActivationPlan plan = mlp.plan(InputShape.ofRows(6));
      long before = backend.allocations();
      assertSame(plan, mlp.plan(InputShape.ofRows(6)), "a shape's plan is made once");
      assertEquals(before, backend.allocations());
      List<Tensor> kept = new ArrayList<>();
      long base = plan.view("x0").address();
      for (Map.Entry<String, ActivationSpec> e : plan.activations().entrySet()) {
        Tensor v = plan.view(e.getKey());
        assertEquals(e.getValue().rows(), v.rows());
        assertEquals(e.getValue().cols(), v.cols());
        assertEquals(0, (v.address() - base) % ActivationPlan.ALIGNMENT, e.getKey() + " is aligned");
        assertEquals(e.getValue().lifetime() != Lifetime.SCRATCH, plan.isKept(e.getKey()), e.getKey());
        if (plan.isKept(e.getKey())) {
          kept.add(v);
        }
      }
      for (int i = 0; i < kept.size(); i++) {
        for (int j = i + 1; j < kept.size(); j++) {
          assertFalse(kept.get(i).overlaps(kept.get(j)), kept.get(i) + " and " + kept.get(j));
        }
      }
      // a frame is reused: layer 2's scratch sits where layer 1's does, above the Mlp's own
      assertTrue(plan.view("layers.2.ds").overlaps(plan.view("layers.1.ones")));
      assertFalse(plan.view("layers.2.ds").overlaps(plan.view("dy2")));
      assertEquals(plan.bytes(), plan.keptBytes() + plan.frameBytes());
      assertTrue(backend.nativeBytes() >= plan.bytes());

      ActivationPlan other = mlp.plan(InputShape.ofRows(8));
      assertNotSame(plan, other);
      assertEquals(8, other.view("x1").rows());
      assertFalse(plan.isClosed(), "two shapes are kept");
      mlp.plan(InputShape.ofRows(10));
      assertTrue(plan.isClosed(), "the least recently used third shape's plan is closed");
      assertFalse(other.isClosed());
      assertRefused(IllegalArgumentException.class, () -> other.view("layers.9.x"), "layers.9.x");
    }
  }

  @Test
  void trainingAndEvaluationShapesInTurnAllocateNothingOnceSeen() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend); Mlp mlp = model(s, 1)) {
      Tensor train = s.allocate(6, IN, DType.F32).fill(0.5f), eval = s.allocate(8, IN, DType.F32).fill(0.25f);
      Tensor dout = s.allocate(6, OUT, DType.F32).fill(1f);
      mlp.forward(train);
      mlp.backward(dout);
      mlp.train(false).forward(eval);
      long seen = backend.allocations();
      for (int i = 0; i < 3; i++) {
        mlp.train(true).forward(train);
        mlp.backward(dout);
        mlp.train(false).forward(eval);
      }
      assertEquals(seen, backend.allocations());
      assertRefused(IllegalArgumentException.class, () -> mlp.backward(dout), "[8,5]", "[6,5]");
    }
  }

  @Test
  void aChangedModelOrSwitchGetsANewPlan() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend); Mlp mlp = model(s, 1)) {
      ActivationPlan plan = mlp.plan(InputShape.ofRows(4));
      mlp.recompute(true);
      ActivationPlan recomputing = mlp.plan(InputShape.ofRows(4));
      assertTrue(plan.isClosed(), "the stale plan is freed");
      assertFalse(recomputing.isKept("y1"));
      assertTrue(recomputing.isKept("x0") && recomputing.isKept("y2"), "input and output stay kept");
      assertFalse(recomputing.isKept("layers.0.ss"), "what the layers keep is recomputed too");
      Linear plain = new Linear(s.allocate(HIDDEN, HIDDEN, DType.F32).fill(0.1f), null, false);
      mlp.module("layers").replaceChild("1", plain).close();
      ActivationPlan replaced = mlp.plan(InputShape.ofRows(4));
      assertTrue(recomputing.isClosed());
      assertFalse(replaced.activations().containsKey("layers.1.ones"));
      assertRefused(IllegalArgumentException.class, () -> plain.recompute(true), "recompute", "Linear");
    }
  }

  @Test
  void recomputingBlocksShareOneFrame() {
    int rows = 64; // F32 rows of 256 bytes: no padding, so the sizes add up exactly
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend)) {
      Blocks blocks = new Blocks(List.of(model(s, 1), model(s, 2), model(s, 3)));
      try (blocks) {
        InputShape shape = InputShape.ofRows(rows);
        ActivationPlan keeping = blocks.plan(shape);
        long keptOff = keeping.keptBytes(), framesOff = keeping.frameBytes();
        long recomputable = 0; // of one block: its own RECOMPUTABLE buffers and its layers' kept ones
        for (ActivationSpec a : ((Mlp) blocks.module("blocks.0")).activations(shape)) {
          boolean layer = a.name().startsWith("layers.");
          if (layer ? a.lifetime() != Lifetime.SCRATCH : a.lifetime() == Lifetime.RECOMPUTABLE) {
            recomputable += a.bytes();
          }
        }
        for (int b = 0; b < 3; b++) {
          ((Mlp) blocks.module("blocks." + b)).recompute(true);
        }
        ActivationPlan recomputing = blocks.plan(shape);
        assertEquals(keptOff - 3 * recomputable, recomputing.keptBytes(), "no block keeps its inner activations");
        assertEquals(framesOff + recomputable, recomputing.frameBytes(), "one block's worth is recomputed at a time");
        assertEquals(keeping.bytes() - 2 * recomputable, recomputing.bytes());
        assertTrue(recomputing.view("blocks.0.y1").overlaps(recomputing.view("blocks.2.y1")));
      }
    }
  }

  /**
   * An Mlp that recomputes gives the gradients of one that keeps, bit for bit, dropout included,
   * even when what it does not keep is overwritten between forward and backward.
   */
  @Test
  void recomputedGradientsAreBitIdenticalOnCpu() {
    int rows = 6;
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend);
        Mlp keeping = model(s, 9); Mlp recomputing = model(s, 9).recompute(true)) {
      SplittableRandom rng = new SplittableRandom(3);
      Tensor dout = s.allocate(rows, OUT, DType.F32);
      for (int step = 0; step < 3; step++) { // later steps draw other dropout masks
        Tensor x = s.fromArray(Reference.random(rng, rows * IN, DType.F32), rows, IN, DType.F32);
        Tensor t = s.fromArray(Reference.random(rng, rows * OUT, DType.F32), rows, OUT, DType.F32);
        double lossKeeping = backend.mse(keeping.forward(x), t, dout);
        keeping.backward(dout);
        double lossRecomputing = backend.mse(recomputing.forward(x), t, dout);
        ActivationPlan plan = recomputing.plan(InputShape.ofRows(rows));
        for (String path : plan.activations().keySet()) {
          if (!plan.isKept(path)) {
            plan.view(path).fill(Float.NaN); // as the next block's forward would
          }
        }
        recomputing.backward(dout);
        assertEquals(lossKeeping, lossRecomputing);
        List<Parameter> a = keeping.parameters(), b = recomputing.parameters();
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
          assertArrayEquals(a.get(i).grad().toFloatArray(), b.get(i).grad().toFloatArray(), a.get(i).name());
        }
      }
      assertFalse(Float.isNaN(keeping.parameters().get(0).grad().toFloatArray()[0]));
    }
  }
}
