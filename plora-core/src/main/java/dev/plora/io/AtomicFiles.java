package dev.plora.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Files that appear complete or not at all: written to a temporary file beside the target,
 * forced to disk, then renamed over it. A crash or a full disk leaves any previous file intact.
 *
 * <p>A temporary file is locked while it is written. A killed write leaves its temporary file
 * behind, unlocked (the system drops a dead process's locks): the next write of the same target
 * removes such leftovers and leaves locked ones, which belong to a write still running.
 */
public final class AtomicFiles {
  private static final String SUFFIX = ".tmp";

  private AtomicFiles() {}

  /** Writes {@code bytes} to {@code target} atomically; refuses an existing target unless {@code overwrite}. */
  public static void write(Path target, byte[] bytes, boolean overwrite) throws IOException {
    requireWritable(target, overwrite);
    try (Temp tmp = createTemp(target)) {
      ByteBuffer b = ByteBuffer.wrap(bytes);
      while (b.hasRemaining()) {
        tmp.channel().write(b);
      }
      tmp.publish();
    }
  }

  /** Throws when {@code target} exists and may not be replaced. */
  public static void requireWritable(Path target, boolean overwrite) {
    if (!overwrite && Files.exists(target)) {
      throw new IllegalArgumentException(target + " exists (use --force / overwrite to replace it)");
    }
  }

  /** A temporary file being written, locked until it is published or closed (and then deleted). */
  public static final class Temp implements AutoCloseable {
    private final Path target;
    private final Path path;
    private final FileChannel channel;
    private boolean published;

    private Temp(Path target, Path path, FileChannel channel) {
      this.target = target;
      this.path = path;
      this.channel = channel;
    }

    public Path path() {
      return path;
    }

    /** Open for writing, positioned at its end. */
    public FileChannel channel() {
      return channel;
    }

    /** Forces the data to disk and renames the file over the target in one step. */
    public void publish() throws IOException {
      channel.force(true);
      Files.move(path, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      published = true;
      channel.close();
    }

    /** Closes the file (releasing its lock); deletes it unless it was published. */
    @Override
    public void close() throws IOException {
      try {
        if (!published) {
          Files.deleteIfExists(path); // while still locked, so no cleanup races this delete
        }
      } finally {
        channel.close();
      }
    }
  }

  /**
   * A new temporary file beside {@code target} (same folder, so the rename is atomic), readable by
   * all, open and locked; leftovers of killed writes of the same target are removed first.
   */
  public static Temp createTemp(Path target) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    String prefix = "." + target.getFileName() + ".";
    removeLeftovers(dir, prefix);
    for (int attempt = 0; ; attempt++) {
      Path tmp = Files.createTempFile(dir, prefix, SUFFIX);
      FileChannel channel = null;
      try {
        channel = FileChannel.open(tmp, StandardOpenOption.WRITE);
        if (lockIfStillThere(channel, tmp)) {
          try {
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
          } catch (UnsupportedOperationException e) {
            // not a POSIX file system: keep its default permissions
          }
          return new Temp(target, tmp, channel);
        }
        channel.close();
      } catch (IOException | RuntimeException e) {
        if (channel != null) {
          channel.close();
        }
        Files.deleteIfExists(tmp);
        throw e;
      }
      if (attempt == 10) {
        throw new IOException("cannot create a temporary file for " + target + ": it keeps disappearing");
      }
    }
  }

  /**
   * Locks a new temporary file, waiting out a cleanup that found it before it was locked; false
   * when that cleanup deleted it.
   */
  private static boolean lockIfStillThere(FileChannel channel, Path tmp) throws IOException {
    try {
      channel.lock();
    } catch (OverlappingFileLockException e) { // a cleanup in this process holds it
      return false;
    } catch (IOException e) { // a file system without locks: write unlocked (no cleanup removes it)
      return true;
    }
    return Files.exists(tmp);
  }

  /** Deletes the unlocked temporary files {@code <prefix><digits>.tmp} in {@code dir}: writes that were killed. */
  private static void removeLeftovers(Path dir, String prefix) throws IOException {
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, p -> isTemp(p.getFileName().toString(), prefix))) {
      for (Path file : files) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
          FileLock lock = channel.tryLock();
          if (lock != null) { // nobody writes it
            Files.deleteIfExists(file);
          }
        } catch (OverlappingFileLockException | NoSuchFileException e) {
          // written by this process, or already gone
        } catch (IOException e) {
          // cannot tell whether it is in use (no locks here, or no permission): leave it
        }
      }
    }
  }

  private static boolean isTemp(String name, String prefix) {
    if (!name.startsWith(prefix) || !name.endsWith(SUFFIX) || name.length() == prefix.length() + SUFFIX.length()) {
      return false;
    }
    return name.substring(prefix.length(), name.length() - SUFFIX.length()).chars().allMatch(Character::isDigit);
  }
}
