package dev.plora.model;

import dev.plora.optim.Parameter;
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
 */
public abstract class Module implements AutoCloseable {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_]+");

  private final Map<String, Module> children = new LinkedHashMap<>();
  private boolean training = true;
  private boolean closed;

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
