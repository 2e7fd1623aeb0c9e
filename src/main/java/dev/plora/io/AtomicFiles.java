package dev.plora.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Files that appear complete or not at all: written to a temporary file beside the target,
 * forced to disk, then renamed over it. A crash or a full disk leaves any previous file intact.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Writes {@code bytes} to {@code target} atomically; refuses an existing target unless {@code overwrite}. */
  public static void write(Path target, byte[] bytes, boolean overwrite) throws IOException {
    requireWritable(target, overwrite);
    Path tmp = createTemp(target);
    try {
      try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
          channel.write(b);
        }
        channel.force(true);
      }
      publish(tmp, target);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Throws when {@code target} exists and may not be replaced. */
  public static void requireWritable(Path target, boolean overwrite) {
    if (!overwrite && Files.exists(target)) {
      throw new IllegalArgumentException(target + " exists (use --force / overwrite to replace it)");
    }
  }

  /** An empty temporary file beside {@code target} (same folder, so the rename is atomic), readable by all. */
  public static Path createTemp(Path target) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
    try {
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
    } catch (UnsupportedOperationException e) {
      // not a POSIX file system: keep its default permissions
    }
    return tmp;
  }

  /** Renames a finished temporary file over {@code target} in one step. */
  public static void publish(Path tmp, Path target) throws IOException {
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
