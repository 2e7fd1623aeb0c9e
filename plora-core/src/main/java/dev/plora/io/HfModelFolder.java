package dev.plora.io;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A Hugging Face model folder as a whole: its weights ({@link HfCheckpoint}) and the files beside
 * them that loaders also read — config.json, generation_config.json, the tokenizer's files, the chat
 * template. A folder written here appears complete or not at all.
 */
public final class HfModelFolder {
  public static final String CONFIG = "config.json";
  /** Largest config.json rewritten (real ones are a few KiB). */
  public static final long MAX_CONFIG_BYTES = 1 << 20;
  /** The config.json fields that name the weights' dtype: transformers' older name and its newer one. */
  private static final List<String> DTYPE_FIELDS = List.of("torch_dtype", "dtype");
  /**
   * Endings of files that hold weights or index them, in every framework's format (safetensors,
   * PyTorch, TensorFlow, Flax, GGUF, ONNX, Rust): never copied, since the copy would not be the
   * merged weights. {@code tokenizer.model} (SentencePiece) is not one.
   */
  private static final List<String> WEIGHT_ENDINGS = List.of(".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5",
      ".msgpack", ".gguf", ".onnx", ".ot", ".index.json");

  private HfModelFolder() {}

  /** What fills a folder being written: everything goes into {@code dir}, which becomes the target whole. */
  @FunctionalInterface
  public interface Contents {
    void writeInto(Path dir) throws IOException;
  }

  /**
   * Whether a file of a model folder holds weights (or their index) rather than describing the
   * model; a PEFT adapter's config counts as weights, since it describes adapter weights.
   */
  public static boolean isWeightFile(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    return lower.equals(PeftAdapter.CONFIG) || WEIGHT_ENDINGS.stream().anyMatch(lower::endsWith);
  }

  /**
   * The companion files of model folder {@code dir}: its regular files (links followed) that are
   * not weights nor hidden, sorted. Subfolders are left out (such as {@code original/}, which holds
   * weights in another layout).
   */
  public static List<String> companionFiles(Path dir) throws IOException {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        if (!name.startsWith(".") && Files.isRegularFile(file) && !isWeightFile(name)) {
          names.add(name);
        }
      }
    }
    names.sort(null);
    return names;
  }

  /**
   * Copies {@code from}'s {@link #companionFiles} into folder {@code to} (each atomically, replacing
   * what is there), so that weights written into {@code to} make a complete model folder. With
   * {@code dtype}, config.json's {@code torch_dtype} (and {@code dtype}, where present) is set to
   * its PyTorch name when it differs; otherwise every file is copied byte for byte. Returns the
   * names copied.
   */
  public static List<String> copyCompanionFiles(Path from, Path to, Safetensors.Dtype dtype) throws IOException {
    if (!Files.isDirectory(from)) {
      throw new IllegalArgumentException(from + ": not a model folder");
    }
    List<String> names = companionFiles(from);
    Files.createDirectories(to);
    for (String name : names) {
      if (name.equals(CONFIG) && dtype != null) {
        AtomicFiles.write(to.resolve(name), configWithDtype(from.resolve(name), dtype), true);
      } else {
        AtomicFiles.copy(from.resolve(name), to.resolve(name), true);
      }
    }
    return names;
  }

  /**
   * Writes a model folder at {@code target} whole: {@code contents} fills a temporary folder beside
   * it, which is renamed into place once complete; on any failure the temporary folder is deleted
   * and {@code target} is as it was. An existing target is replaced only with {@code overwrite}
   * and only when it is empty or a model folder (config.json or weights in it), never another folder.
   */
  public static void write(Path target, boolean overwrite, Contents contents) throws IOException {
    if (overwrite) {
      requireReplaceable(target);
    }
    try (AtomicFiles.TempFolder tmp = AtomicFiles.createTempFolder(target, overwrite)) {
      contents.writeInto(tmp.path());
      tmp.publish();
    }
  }

  /** Refuses an existing {@code target} that is neither an empty folder nor a model folder. */
  public static void requireReplaceable(Path target) throws IOException {
    if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (!Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
      throw new IllegalArgumentException(target + " exists and is not a folder");
    }
    boolean empty;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(target)) {
      empty = !files.iterator().hasNext();
    }
    if (!empty && !Files.exists(target.resolve(CONFIG)) && !Files.exists(target.resolve(HfCheckpoint.SINGLE))
        && !Files.exists(target.resolve(HfCheckpoint.INDEX))) {
      throw new IllegalArgumentException(target + " is a folder with files but no " + CONFIG + " or weights: not "
          + "a model folder, so it is not replaced");
    }
  }

  /** PyTorch's name of a float dtype, as config.json's torch_dtype gives it. */
  public static String torchName(Safetensors.Dtype dtype) {
    return switch (dtype) {
      case F32 -> "float32";
      case BF16 -> "bfloat16";
      case F16 -> "float16";
      case F64 -> "float64";
      default -> throw new IllegalArgumentException("dtype: expected a float dtype, got " + dtype);
    };
  }

  /** config.json's bytes with its dtype fields naming {@code dtype} (torch_dtype added if it has neither). */
  private static byte[] configWithDtype(Path file, Safetensors.Dtype dtype) throws IOException {
    String text = Json.readSmallFile(file, MAX_CONFIG_BYTES, "a model config");
    Object json;
    try {
      json = Json.parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    if (!(json instanceof Map<?, ?> parsed)) {
      throw new IllegalArgumentException(file + ": expected a JSON object");
    }
    String name = torchName(dtype);
    boolean same = DTYPE_FIELDS.stream().filter(parsed::containsKey).allMatch(f -> name.equals(parsed.get(f)))
        && DTYPE_FIELDS.stream().anyMatch(parsed::containsKey);
    if (same) {
      return text.getBytes(StandardCharsets.UTF_8);
    }
    Map<String, Object> config = new LinkedHashMap<>();
    parsed.forEach((k, v) -> config.put((String) k, v));
    boolean named = false;
    for (String field : DTYPE_FIELDS) {
      if (config.containsKey(field)) {
        config.put(field, name);
        named = true;
      }
    }
    if (!named) {
      config.put("torch_dtype", name);
    }
    return (Json.write(config, 1) + "\n").getBytes(StandardCharsets.UTF_8);
  }
}
