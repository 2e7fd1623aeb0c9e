package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.backend.cuda.CudaSupport;
import dev.plora.io.HfModelFolder;
import dev.plora.io.Json;
import dev.plora.io.PeftAdapter;
import dev.plora.tensor.DType;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Locale;
import java.util.Map;

/**
 * Parsing and checks shared by the commands: dtype names, the backend option, and the paths
 * they read and write. Paths are checked before any work, so a bad one costs nothing and
 * changes nothing.
 */
final class Options {
  private Options() {}

  /** "f32", "bf16" (and "f16" when allowed) as a dtype; anything else is bad input naming the option. */
  static DType dtype(String option, String value, boolean allowF16) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "f32" -> DType.F32;
      case "bf16" -> DType.BF16;
      case "f16" -> {
        if (!allowF16) {
          throw new IllegalArgumentException(option + ": expected f32 or bf16, got '" + value + "'");
        }
        yield DType.F16;
      }
      default -> throw new IllegalArgumentException(option + ": expected f32, bf16" + (allowF16 ? " or f16" : "")
          + ", got '" + value + "'");
    };
  }

  /**
   * The backend the {@code --backend} option names, or the settings' choice when it is absent.
   * CUDA asked for where it is unusable is bad input carrying the probe's reason.
   */
  static Backend backend(String option) {
    String name = backendName(option);
    return name != null ? Backends.create(name) : Backends.create();
  }

  /** The backend's name as {@link #backend} checks it, or null for the default; nothing is created. */
  static String backendName(String option) {
    String setting = option != null ? "--backend" : Backends.setting();
    String name = option != null ? Backends.name(setting, option) : Backends.requested();
    if ("cuda".equals(name) && !CudaSupport.isUsable()) {
      throw new IllegalArgumentException(setting + "=cuda: CUDA is unusable here: " + CudaSupport.reason());
    }
    return name;
  }

  /** A file to read: it exists and is a regular file (checked before opening: a FIFO would block the open). */
  static void inputFile(String option, Path file) throws IOException {
    BasicFileAttributes a = attributes(option, file);
    if (a == null) {
      throw new IllegalArgumentException(option + ": no such file: " + file);
    }
    if (a.isDirectory()) {
      throw new IllegalArgumentException(option + ": " + file + " is a folder, expected a file");
    }
    if (!a.isRegularFile()) {
      throw new IllegalArgumentException(option + ": " + file + " is not a regular file (a FIFO, device or socket?)");
    }
  }

  /**
   * A PEFT adapter folder with both files regular (FIFOs are refused unopened); {@link
   * PeftAdapter#read} checks their contents (size, encoding, fields) when it loads the folder.
   */
  static void adapterFolder(String option, Path dir) throws IOException {
    BasicFileAttributes a = attributes(option, dir);
    if (a == null) {
      throw new IllegalArgumentException(option + ": no such folder: " + dir);
    }
    if (!a.isDirectory()) {
      throw new IllegalArgumentException(option + ": " + dir + " is not a folder (expected a PEFT adapter folder)");
    }
    Path config = dir.resolve(PeftAdapter.CONFIG);
    inputFile(option, config);
    inputFile(option, dir.resolve(PeftAdapter.WEIGHTS));
  }

  /**
   * A file to write: not a folder or a special file, not there unless {@code overwrite}, in a
   * folder that exists or can be made and may be written.
   */
  static void outputFile(String option, Path file, boolean overwrite) throws IOException {
    writableFolder(option, file);
    BasicFileAttributes a = attributes(option, file);
    if (a != null) {
      if (a.isDirectory()) {
        throw new IllegalArgumentException(option + ": " + file + " is a folder, expected a file to write");
      }
      if (!a.isRegularFile()) {
        throw new IllegalArgumentException(option + ": " + file + " is not a regular file (a FIFO, device or socket?)");
      }
      if (!overwrite) {
        throw new IllegalArgumentException(option + ": " + file + " exists: use --force to replace it");
      }
    }
  }

  /** A folder to write {@code names} into: a folder or nothing yet, and each name a file to write or absent. */
  static void outputFolder(String option, Path dir, String... names) throws IOException {
    writableFolder(option, dir);
    BasicFileAttributes a = attributes(option, dir);
    if (a != null && !a.isDirectory()) {
      throw new IllegalArgumentException(option + ": " + dir + " is not a folder");
    }
    for (String name : names) {
      outputFile(option, dir.resolve(name), true);
    }
  }

  /**
   * A model folder to write whole: in a folder that exists or can be made and may be written;
   * when there, a folder that {@code overwrite} allows replacing and {@link
   * HfModelFolder#requireReplaceable} accepts, and not one that is or holds an input (replacing it
   * would delete what the command reads).
   */
  static void outputModelFolder(String option, Path dir, boolean overwrite, Path... inputs) throws IOException {
    writableFolder(option, dir);
    BasicFileAttributes a = attributes(option, dir);
    if (a == null) {
      return;
    }
    if (!a.isDirectory()) {
      throw new IllegalArgumentException(option + ": " + dir + " exists and is not a folder");
    }
    if (!overwrite) {
      throw new IllegalArgumentException(option + ": " + dir + " exists: use --force to replace it");
    }
    Path real = dir.toRealPath();
    for (Path input : inputs) {
      if (input.toRealPath().startsWith(real)) {
        throw new IllegalArgumentException(option + ": " + dir + " is or holds the input " + input
            + ", which replacing it would delete");
      }
    }
    try {
      HfModelFolder.requireReplaceable(dir);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(option + ": " + e.getMessage());
    }
  }

  /** An IOException met while writing {@code target}, as one line naming it (not the temporary file beside it). */
  static IOException cannotWrite(Path target, IOException e) {
    return new IOException("cannot write " + target + ": " + reason(e), e);
  }

  /** What went wrong, without the path java.nio puts in front of it. */
  private static String reason(IOException e) {
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason();
    }
    return e instanceof AccessDeniedException ? "permission denied"
        : e instanceof NoSuchFileException ? "no such file or folder"
        : e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  /**
   * The folders above {@code target} are folders as far as they exist (walked from the root:
   * below a file every lookup fails with "not a directory"), and a file can be made in the
   * last existing one.
   */
  private static void writableFolder(String option, Path target) throws IOException {
    requireNonEmpty(option, target);
    Path parent = target.toAbsolutePath().getParent();
    if (parent == null) {
      return; // the root itself: refused as a folder by the caller
    }
    Path existing = parent.getRoot();
    for (Path name : existing.relativize(parent)) {
      Path next = existing.resolve(name);
      BasicFileAttributes a = attributes(option, next);
      if (a == null) {
        break; // made by the write
      }
      if (!a.isDirectory()) {
        throw new IllegalArgumentException(option + ": " + target + " is under " + next + ", which is not a folder");
      }
      existing = next;
    }
    try { // a file made and removed: permissions alone miss read-only mounts, /proc, /sys
      Files.delete(Files.createTempFile(existing, ".plora-", ".probe"));
    } catch (IOException e) {
      throw new IllegalArgumentException(option + ": cannot write " + target + ": no file can be made in " + existing
          + " (" + reason(e) + ")");
    }
  }

  /** The attributes of {@code path} (links followed), or null when nothing is there; an empty path is refused. */
  private static BasicFileAttributes attributes(String option, Path path) throws IOException {
    requireNonEmpty(option, path);
    try {
      return Files.readAttributes(path, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      return null;
    }
  }

  /** An empty argument would mean the current folder to java.nio: refuse it instead. */
  private static void requireNonEmpty(String option, Path path) {
    if (path.toString().isEmpty()) {
      throw new IllegalArgumentException(option + ": the path is empty");
    }
  }
}
