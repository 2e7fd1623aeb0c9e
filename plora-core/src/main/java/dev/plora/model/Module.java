package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A part of a model whose forward and backward passes are written by hand (no autograd tape: the
 * architectures are fixed). A module has named children, so every module of a model has a dotted
 * path as in Hugging Face and PEFT ({@code model.layers.0.self_attn.q_proj}); its trainable
 * parameters; a training or evaluation mode; and owns native memory released by {@link #close()}.
 *
 * <p>Each module type defines its own forward and backward methods, with as many inputs and
 * outputs as it needs (attention takes q, k and v; a decoder block adds residuals). A parent calls
 * its children through {@link #child(String)} rather than through fields, so that a child can be
 * replaced — this is how LoRA adapters wrap linear modules.
 *
 * <p>A module describes the buffers its passes need ({@link #ownActivations}); the model makes
 * one {@link ActivationPlan} per input shape from the descriptions of all its modules and hands
 * each module its views ({@link #usePlan}, {@link #activation}). A module that can recompute its
 * activations in backward instead of keeping them has a switch, {@link #recompute(boolean)}.
 */
public abstract class Module implements AutoCloseable {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_]+");

  private final Map<String, Module> children = new LinkedHashMap<>();
  private static final int PLANS_KEPT = 2; // e.g. the training and the evaluation batch shape
  private boolean training = true;
  private boolean closed;
  private boolean recompute;
  private boolean replaying;
  private ActivationPlan boundPlan;
  private Map<String, Tensor> boundViews = Map.of();
  // Plans this module made as a model, by shape, least recently used first.
  private final Map<InputShape, ActivationPlan> plans = new LinkedHashMap<>(4, 0.75f, true);

  /** Adds {@code child} under {@code name} (letters, digits, '_'); the module owns and closes it. */
  protected final <M extends Module> M register(String name, M child) {
    requireName(name);
    if (child == null) {
      throw new IllegalArgumentException("child '" + name + "': must not be null");
    }
    if (children.containsKey(name)) {
      throw new IllegalArgumentException("child '" + name + "': already registered in " + getClass().getSimpleName());
    }
    children.put(name, child);
    child.train(training);
    return child;
  }

  /**
   * Replaces the child {@code name} by {@code replacement} and returns the old child, which the
   * caller now owns (a wrapper typically takes over its memory and closes it).
   */
  public final Module replaceChild(String name, Module replacement) {
    requireOpen();
    if (replacement == null) {
      throw new IllegalArgumentException("replacement for '" + name + "': must not be null");
    }
    Module old = child(name);
    children.put(name, replacement);
    replacement.train(training);
    return old;
  }

  /** The direct child called {@code name}. */
  public final Module child(String name) {
    Module m = children.get(name);
    if (m == null) {
      throw new IllegalArgumentException("no child '" + name + "' in " + getClass().getSimpleName() + " (children: "
          + children.keySet() + ")");
    }
    return m;
  }

  /** The direct children, by name, in registration order. */
  public final Map<String, Module> children() {
    return Collections.unmodifiableMap(children);
  }

  /** Every descendant by dotted path, parents before children, in registration order. */
  public final Map<String, Module> modules() {
    Map<String, Module> out = new LinkedHashMap<>();
    collect("", out);
    return Collections.unmodifiableMap(out);
  }

  private void collect(String prefix, Map<String, Module> out) {
    for (Map.Entry<String, Module> e : children.entrySet()) {
      String path = prefix + e.getKey();
      out.put(path, e.getValue());
      e.getValue().collect(path + ".", out);
    }
  }

  /** The descendant at a dotted path such as {@code layers.0.mlp.up_proj}. */
  public final Module module(String path) {
    if (path == null || path.isEmpty()) {
      throw new IllegalArgumentException("path: must not be empty");
    }
    Module m = this;
    for (String name : path.split("\\.", -1)) {
      m = m.children.get(name);
      if (m == null) {
        throw new IllegalArgumentException("no module '" + path + "' in " + getClass().getSimpleName());
      }
    }
    return m;
  }

  /**
   * The path of the model's output head (the layer that produces its outputs, such as
   * {@code lm_head}), which {@code all-linear} leaves out as PEFT does; null when there is none.
   */
  public String outputHead() {
    return null;
  }

  /** The parameters this module holds itself, not its children's; none by default. */
  protected List<Parameter> ownParameters() {
    return List.of();
  }

  /** The trainable parameters of this module and all its descendants. */
  public final List<Parameter> parameters() {
    requireOpen();
    List<Parameter> out = new ArrayList<>(ownParameters());
    for (Module child : children.values()) {
      out.addAll(child.parameters());
    }
    return out;
  }

  /**
   * The backend whose memory holds this module's tensors; null (the default) for a module with
   * no buffers of its own, such as a list of modules.
   */
  public Backend backend() {
    return null;
  }

  // ---------------------------------------------------------------- activations

  /**
   * The buffers this module's forward and backward passes use at {@code shape}, not its
   * children's: names unique within the module, shapes as functions of the shape (typically
   * {@code [shape.rows(), features]}). None by default.
   */
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    return List.of();
  }

  /** The buffers of this module and all its descendants at {@code shape}, named by dotted path. */
  public final List<ActivationSpec> activations(InputShape shape) {
    requireOpen();
    List<ActivationSpec> out = new ArrayList<>();
    ActivationPlan.describe(this, "", shape).collect(out);
    return out;
  }

  /** True for a module whose backward can recompute its forward's activations; false by default. */
  protected boolean canRecompute() {
    return false;
  }

  /**
   * Activation checkpointing: with {@code on}, this module keeps only its input and output from
   * forward to backward and its backward runs its forward again first (with the same random
   * draws), which gives the same gradients, bit for bit, for less kept memory (see
   * {@link ActivationPlan}). Refused by a module that cannot recompute.
   */
  public Module recompute(boolean on) {
    requireOpen();
    if (on && !canRecompute()) {
      throw new IllegalArgumentException("recompute: " + getClass().getSimpleName() + " cannot recompute its "
          + "activations");
    }
    recompute = on;
    return this;
  }

  public final boolean recomputes() {
    return recompute;
  }

  /**
   * The plan this module makes, as a model, for {@code shape}: made on first use, and again when
   * the modules, their buffers or their switches have changed since; the plans of the two shapes
   * used last are kept, an older one is closed. Its arena belongs to this module.
   */
  public final ActivationPlan plan(InputShape shape) {
    requireOpen();
    if (shape == null) {
      throw new IllegalArgumentException("shape: must not be null");
    }
    ActivationPlan plan = plans.get(shape);
    if (plan != null && plan.madeFrom(ActivationPlan.describe(this, "", shape))) {
      return plan;
    }
    if (plan != null) {
      plans.remove(shape).close();
    }
    plan = ActivationPlan.build(this, shape);
    plans.put(shape, plan);
    if (plans.size() > PLANS_KEPT) {
      InputShape eldest = plans.keySet().iterator().next();
      plans.remove(eldest).close();
    }
    return plan;
  }

  /**
   * Makes sure this module and those below it hold the views of a plan for {@code shape}: the
   * one a module above bound for its pass when it was made for as many rows, else this module's
   * own ({@link #plan}). The entry of every forward pass calls it first.
   */
  protected final void usePlan(InputShape shape) {
    if (boundPlan != null && boundPlan.root() != this && !boundPlan.isClosed()
        && boundPlan.shape().rows() == shape.rows()) {
      return;
    }
    plan(shape).bind();
  }

  /** The view of this module's buffer {@code name} in the plan bound last. */
  protected final Tensor activation(String name) {
    Tensor view = boundViews.get(name);
    if (view == null || boundPlan.isClosed()) {
      throw new IllegalStateException(getClass().getSimpleName() + ": no activation plan with a buffer '" + name
          + "' is in use (a forward pass binds one)");
    }
    return view;
  }

  /** Called by a plan when it hands this module its views. */
  final void bind(ActivationPlan plan, Map<String, Tensor> views) {
    boundPlan = plan;
    boundViews = views;
  }

  /**
   * Runs {@code forward} — the module's last forward pass again, to recompute its activations in
   * backward — with every module below told to repeat its last random draws ({@link #isReplaying}).
   */
  protected final void replay(Runnable forward) {
    setReplaying(true);
    try {
      forward.run();
    } finally {
      setReplaying(false);
    }
  }

  private void setReplaying(boolean on) {
    replaying = on;
    for (Module child : children.values()) {
      child.setReplaying(on);
    }
  }

  /** True while a module above recomputes: a forward pass must draw the random numbers of the last one. */
  protected final boolean isReplaying() {
    return replaying;
  }

  // ---------------------------------------------------------------- modes and lifecycle

  /** Training mode (dropout on) or evaluation mode, for this module and all its descendants. */
  public Module train(boolean training) {
    this.training = training;
    for (Module child : children.values()) {
      child.train(training);
    }
    return this;
  }

  public final boolean isTraining() {
    return training;
  }

  public final boolean isClosed() {
    return closed;
  }

  /** Throws {@link IllegalStateException} once the module is closed. */
  /**
   * Refuses, before any work, an input that is not an open [rows, {@code cols}] tensor of
   * {@code dtype}, naming the argument, what was expected and what came.
   */
  protected static void requireInput(String argument, Tensor x, int cols, DType dtype) {
    if (x == null || x.cols() != cols || x.dtype() != dtype) {
      throw new IllegalArgumentException(argument + ": expected [M," + cols + "] " + dtype + ", got "
          + (x == null ? "null" : x.shape() + " " + x.dtype()));
    }
    x.requireOpen(argument);
  }

  protected final void requireOpen() {
    if (closed) {
      throw new IllegalStateException(getClass().getSimpleName() + " is closed");
    }
  }

  /** Frees what this module holds itself (children are closed by {@link #close()}). */
  protected void release() {}

  /** Closes the children (last registered first), then this module's own memory. Idempotent. */
  @Override
  public final void close() {
    if (closed) {
      return;
    }
    closed = true;
    List<Module> reversed = new ArrayList<>(children.values());
    Collections.reverse(reversed);
    RuntimeException failure = null;
    for (Module child : reversed) {
      try {
        child.close();
      } catch (RuntimeException e) {
        failure = failure == null ? e : failure;
      }
    }
    release();
    plans.values().forEach(ActivationPlan::close);
    plans.clear();
    boundPlan = null;
    boundViews = Map.of();
    if (failure != null) {
      throw failure;
    }
  }

  private static void requireName(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("child name: expected letters, digits or '_', got "
          + (name == null ? "null" : "'" + name + "'"));
    }
  }
}
