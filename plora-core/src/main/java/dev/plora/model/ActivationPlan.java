package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.model.ActivationSpec.Lifetime;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every buffer a model's forward and backward passes use for one {@link InputShape}, laid out
 * once in a single allocation (the arena) from the modules' {@link Module#ownActivations
 * descriptions} and handed to each module as views, so that a training step allocates nothing.
 *
 * <p>The arena has two regions, each buffer starting at a multiple of {@link #ALIGNMENT} bytes:
 *
 * <ul>
 *   <li><b>kept</b>: buffers whose contents last from forward to backward — each module's
 *       {@link Lifetime#KEPT} and {@link Lifetime#RECOMPUTABLE} buffers, one after another;
 *   <li><b>frames</b>, used as a call stack: a module's frame holds its {@link Lifetime#SCRATCH}
 *       buffers and its children's frames start where it ends, so siblings (which never run at
 *       the same time) share memory and the region is as large as the deepest chain of frames.
 * </ul>
 *
 * <p>A module that {@link Module#recompute recomputes} (activation checkpointing) keeps only its
 * KEPT buffers (its input and output); its RECOMPUTABLE buffers and every buffer of the modules
 * below it move into its frame, where its backward writes them again by running its forward once
 * more before going backward. Recomputing modules side by side share one frame, which is the
 * saving: {@link #keptBytes()} falls by what they no longer keep, {@link #frameBytes()} grows by
 * one module's worth. Within a recomputing module the switches of the modules below it change
 * nothing in the layout (their backward recomputes once more: the same values, only slower).
 *
 * <p>The arena is filled with zeros once. Kept buffers hold what their module last wrote; a frame
 * buffer holds whatever the last module to use that memory left in it.
 */
public final class ActivationPlan implements AutoCloseable {
  /** Bytes between the starts of buffers: a multiple of what vector loads and CUDA want. */
  public static final int ALIGNMENT = 256;
  private static final int ARENA_COLS = 1024; // the arena is a [rows, 1024] F32 tensor

  /** What a plan is made from: one module, its own buffers and switch, and its children. */
  record Node(Module module, String path, List<ActivationSpec> own, boolean recomputes, List<Node> children) {
    /** Appends the buffers of this module and those below, named by path. */
    void collect(List<ActivationSpec> out) {
      own.forEach(s -> out.add(s.under(path)));
      children.forEach(c -> c.collect(out));
    }
  }

  private record Slot(Node node, ActivationSpec spec, boolean inFrames, long offset) {}

  private final Module root;
  private final InputShape shape;
  private final Node tree;
  private final Tensor arena;
  private final long keptBytes;
  private final long frameBytes;
  private final Map<String, ActivationSpec> specs = new LinkedHashMap<>();
  private final Map<String, Tensor> byPath = new LinkedHashMap<>();
  private final Map<String, Boolean> kept = new LinkedHashMap<>();
  private final Map<Module, Map<String, Tensor>> views = new IdentityHashMap<>();
  private boolean closed;

  private ActivationPlan(Module root, InputShape shape, Node tree) {
    this.root = root;
    this.shape = shape;
    this.tree = tree;
    List<Slot> keptSlots = new ArrayList<>(), frameSlots = new ArrayList<>();
    long[] ends = new long[2]; // the kept region's end, the frames' peak
    place(tree, 0, false, keptSlots, frameSlots, ends);
    this.keptBytes = align(ends[0]);
    this.frameBytes = ends[1];
    Backend backend = backendOf(tree);
    long total = keptBytes + frameBytes;
    long rowBytes = (long) ARENA_COLS * DType.F32.byteSize();
    this.arena = total == 0 ? null : backend.allocate(Math.toIntExact((total + rowBytes - 1) / rowBytes), ARENA_COLS,
        DType.F32);
    try {
      if (arena != null) {
        arena.fill(0f);
      }
      for (Slot s : keptSlots) {
        add(s, s.offset());
      }
      for (Slot s : frameSlots) {
        add(s, keptBytes + s.offset());
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** A plan for {@code root}'s tree at {@code shape}, not yet bound to the modules. */
  static ActivationPlan build(Module root, InputShape shape) {
    return new ActivationPlan(root, shape, describe(root, "", shape));
  }

  /** The tree of descriptions a plan for {@code module} at {@code shape} is made from. */
  static Node describe(Module module, String path, InputShape shape) {
    List<Node> children = new ArrayList<>();
    for (Map.Entry<String, Module> e : module.children().entrySet()) {
      children.add(describe(e.getValue(), path.isEmpty() ? e.getKey() : path + "." + e.getKey(), shape));
    }
    return new Node(module, path, List.copyOf(module.ownActivations(shape)), module.recomputes(), children);
  }

  /**
   * Places {@code n}'s buffers: kept ones in the kept region, frame ones from {@code top} on; then
   * its children's frames after its own. {@code under}: a module above recomputes, and has placed
   * this module's kept buffers in its frame already.
   */
  private static void place(Node n, long top, boolean under, List<Slot> keptSlots, List<Slot> frameSlots,
      long[] ends) {
    boolean recomputeRoot = n.recomputes() && !under;
    long frame = top;
    for (ActivationSpec s : n.own()) {
      if (s.lifetime() == Lifetime.SCRATCH || under) {
        continue;
      }
      if (recomputeRoot && s.lifetime() == Lifetime.RECOMPUTABLE) {
        frame = put(frameSlots, true, n, s, frame);
      } else {
        ends[0] = put(keptSlots, false, n, s, ends[0]);
      }
    }
    if (recomputeRoot) {
      for (Node child : n.children()) {
        frame = placeRecomputed(child, frame, frameSlots);
      }
    }
    for (ActivationSpec s : n.own()) {
      if (s.lifetime() == Lifetime.SCRATCH) {
        frame = put(frameSlots, true, n, s, frame);
      }
    }
    ends[1] = Math.max(ends[1], frame);
    for (Node child : n.children()) {
      place(child, frame, under || recomputeRoot, keptSlots, frameSlots, ends);
    }
  }

  /** Every kept buffer of {@code n} and below, in the frame of the recomputing module above. */
  private static long placeRecomputed(Node n, long frame, List<Slot> frameSlots) {
    for (ActivationSpec s : n.own()) {
      if (s.lifetime() != Lifetime.SCRATCH) {
        frame = put(frameSlots, true, n, s, frame);
      }
    }
    for (Node child : n.children()) {
      frame = placeRecomputed(child, frame, frameSlots);
    }
    return frame;
  }

  private static long put(List<Slot> slots, boolean inFrames, Node n, ActivationSpec s, long at) {
    long offset = align(at);
    slots.add(new Slot(n, s, inFrames, offset));
    return offset + s.bytes();
  }

  private static long align(long bytes) {
    return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  }

  private void add(Slot s, long offset) {
    ActivationSpec spec = s.spec().under(s.node().path());
    String path = spec.name();
    if (specs.put(path, spec) != null) {
      throw new IllegalArgumentException("activation '" + path + "' is described twice");
    }
    Tensor view = arena.carve(offset, s.spec().rows(), s.spec().cols(), s.spec().dtype());
    byPath.put(path, view);
    kept.put(path, !s.inFrames());
    views.computeIfAbsent(s.node().module(), m -> new LinkedHashMap<>()).put(s.spec().name(), view);
  }

  private static Backend backendOf(Node n) {
    Backend found = null;
    List<Node> todo = new ArrayList<>(List.of(n));
    while (!todo.isEmpty()) {
      Node m = todo.remove(todo.size() - 1);
      todo.addAll(m.children());
      if (m.own().isEmpty()) {
        continue;
      }
      Backend b = m.module().backend();
      if (b == null) {
        throw new IllegalStateException("module '" + m.path() + "' (" + m.module().getClass().getSimpleName()
            + ") describes activations but has no backend");
      }
      if (found != null && b != found) {
        throw new IllegalArgumentException("module '" + m.path() + "' is on backend " + b.name()
            + ", another module of the model on another backend");
      }
      found = b;
    }
    return found;
  }

  /** Hands every module of the tree its views; the modules use them until another plan is bound. */
  void bind() {
    requireOpen();
    bind(tree);
  }

  private void bind(Node n) {
    n.module().bind(this, views.getOrDefault(n.module(), Map.of()));
    for (Node child : n.children()) {
      bind(child);
    }
  }

  /** True when the plan was made from the descriptions {@code tree} (same modules, buffers and switches). */
  boolean madeFrom(Node tree) {
    return this.tree.equals(tree);
  }

  /** The module the plan was made for (the model). */
  public Module root() {
    return root;
  }

  public InputShape shape() {
    return shape;
  }

  /** Bytes of the arena: {@link #keptBytes()} + {@link #frameBytes()}. */
  public long bytes() {
    return keptBytes + frameBytes;
  }

  /** Bytes of the buffers kept from forward to backward. */
  public long keptBytes() {
    return keptBytes;
  }

  /** Bytes of the frames: the deepest chain of scratch and recomputed buffers. */
  public long frameBytes() {
    return frameBytes;
  }

  /** Every buffer by its path in the model ({@code layers.0.ss}), in the order they were placed. */
  public Map<String, ActivationSpec> activations() {
    return Collections.unmodifiableMap(specs);
  }

  /**
   * True when the buffer at {@code path} keeps its contents from forward to backward; false for
   * scratch and for the buffers of recomputing modules, which backward writes again.
   */
  public boolean isKept(String path) {
    Boolean k = kept.get(path);
    if (k == null) {
      throw new IllegalArgumentException("no activation '" + path + "' in this plan (activations: " + specs.keySet()
          + ")");
    }
    return k;
  }

  /** The view of the buffer at {@code path}. */
  public Tensor view(String path) {
    requireOpen();
    isKept(path);
    return byPath.get(path);
  }

  public boolean isClosed() {
    return closed;
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("activation plan for " + shape + " is closed");
    }
  }

  /** Frees the arena; the views die with it. Idempotent. */
  @Override
  public void close() {
    if (!closed) {
      closed = true;
      if (arena != null) {
        arena.close();
      }
    }
  }

  @Override
  public String toString() {
    return "ActivationPlan{" + shape + ", " + specs.size() + " buffers, kept " + keptBytes + " B, frames "
        + frameBytes + " B}";
  }
}
