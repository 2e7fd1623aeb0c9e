package dev.plora.model;

import java.util.List;

/** Modules numbered 0, 1, … as children, as Hugging Face's {@code model.layers.0}, {@code .1}, … */
public final class ModuleList<M extends Module> extends Module {
  private final Class<M> type;

  /** Takes ownership of {@code modules}. */
  public ModuleList(Class<M> type, List<? extends M> modules) {
    this.type = type;
    for (int i = 0; i < modules.size(); i++) {
      register(Integer.toString(i), modules.get(i));
    }
  }

  public int size() {
    return children().size();
  }

  /** The module at {@code index} now (a replaced child is the replacement). */
  public M get(int index) {
    if (index < 0 || index >= size()) {
      throw new IndexOutOfBoundsException("index " + index + " of a list of " + size() + " modules");
    }
    Module m = child(Integer.toString(index));
    if (!type.isInstance(m)) {
      throw new IllegalStateException("module " + index + " was replaced by a " + m.getClass().getSimpleName()
          + ", not a " + type.getSimpleName());
    }
    return type.cast(m);
  }

  /** The modules in order. */
  public List<M> list() {
    return java.util.stream.IntStream.range(0, size()).mapToObj(this::get).toList();
  }
}
