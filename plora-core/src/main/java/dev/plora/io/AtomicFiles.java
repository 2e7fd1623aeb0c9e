package dev.plora.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Files that appear complete or not at all: written to a temporary file beside the target,
 * forced to disk, then renamed over it. A crash or a full disk leaves any previous file intact.
 *
 * <p>A temporary file is locked while it is written. A killed write leaves its temporary file
 * behind, unlocked (the system drops a dead process's locks): the next write of the same target
 * removes such leftovers and leaves locked ones, which belong to a write still running.
 *
 * <p>Folders (a model folder of several files) appear whole the same way: filled as a temporary
 * folder beside the target, then renamed into place ({@link #createTempFolder}).
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

  /** Copies {@code source}'s bytes to {@code target} atomically, streaming; refuses an existing target unless {@code overwrite}. */
  public static void copy(Path source, Path target, boolean overwrite) throws IOException {
    requireWritable(target, overwrite);
    try (Temp tmp = createTemp(target); InputStream in = Files.newInputStream(source)) {
      in.transferTo(Channels.newOutputStream(tmp.channel()));
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

  // ---------------------------------------------------------------- folders

  /** The file, inside a temporary folder, locked while the folder is written. */
  private static final String FOLDER_LOCK = ".plora-writing";
  private static final String OLD_SUFFIX = ".old";

  /**
   * A temporary folder beside its target, filled by the caller and published by renaming it into
   * place; closed unpublished, it is deleted. A lock file inside it is held while it is written,
   * so later writes of the same target remove the leftovers of killed ones, as for files.
   */
  public static final class TempFolder implements AutoCloseable {
    private final Path target;
    private final Path path;
    private final FileChannel lock;
    private boolean published;

    private TempFolder(Path target, Path path, FileChannel lock) {
      this.target = target;
      this.path = path;
      this.lock = lock;
    }

    /** The folder to fill. */
    public Path path() {
      return path;
    }

    /**
     * Forces every file in the folder to disk and renames the folder into place. An existing target
     * (a folder: a rename cannot replace one with contents) is first renamed aside, then deleted;
     * if the second rename fails it is renamed back, so the target is the old folder or the new.
     */
    public void publish() throws IOException {
      forceFiles(path);
      Files.delete(path.resolve(FOLDER_LOCK)); // still held: no cleanup takes the folder meanwhile
      Path old = null;
      if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        old = moveAside(target);
      }
      try {
        Files.move(path, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException | RuntimeException e) {
        if (old != null) {
          Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
        }
        throw e;
      }
      published = true;
      lock.close();
      if (old != null) {
        deleteTree(old);
      }
    }

    /** Releases the lock; deletes the folder and what it holds unless it was published. */
    @Override
    public void close() throws IOException {
      try {
        if (!published) {
          deleteTree(path); // while still locked, so no cleanup races this delete
        }
      } finally {
        lock.close();
      }
    }
  }

  /**
   * A new, empty temporary folder beside {@code target} (same folder, so the rename is atomic),
   * with its lock held. Refuses an existing target unless {@code overwrite}, and a target that is
   * not a folder. Leftovers of killed writes of the same target are removed first: unlocked
   * temporary folders, and folders renamed aside once the target is back in place.
   */
  public static TempFolder createTempFolder(Path target, boolean overwrite) throws IOException {
    requireWritable(target, overwrite);
    if (Files.exists(target) && !Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
      throw new IllegalArgumentException(target + " exists and is not a folder");
    }
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    String prefix = "." + target.getFileName() + ".";
    removeLeftoverFolders(dir, prefix, Files.exists(target));
    Path tmp = Files.createTempDirectory(dir, prefix);
    FileChannel lock = null;
    try {
      try {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x")); // as a folder made plainly
      } catch (UnsupportedOperationException e) {
        // not a POSIX file system: keep its default permissions
      }
      lock = FileChannel.open(tmp.resolve(FOLDER_LOCK), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      try {
        lock.lock();
      } catch (IOException e) {
        // a file system without locks: write unlocked (no cleanup removes it)
      }
      return new TempFolder(target, tmp, lock);
    } catch (IOException | RuntimeException e) {
      if (lock != null) {
        lock.close();
      }
      deleteTree(tmp);
      throw e;
    }
  }

  /** Deletes a folder and everything in it; links are deleted, not followed. Nothing there is fine. */
  public static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Files.deleteIfExists(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path folder, IOException e) throws IOException {
        if (e != null) {
          throw e;
        }
        Files.deleteIfExists(folder);
        return FileVisitResult.CONTINUE;
      }
    });
  }

  /** Renames {@code target} to an unused {@code .NAME.<digits>.old} beside it; returns that name. */
  private static Path moveAside(Path target) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    for (int attempt = 0; ; attempt++) {
      Path old = dir.resolve("." + target.getFileName() + "." + Long.toUnsignedString(
          ThreadLocalRandom.current().nextLong()) + OLD_SUFFIX);
      try {
        Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        return old;
      } catch (FileAlreadyExistsException e) {
        if (attempt == 10) {
          throw e;
        }
      }
    }
  }

  /** Forces each regular file under {@code root} to disk (written by copies that do not force them). */
  private static void forceFiles(Path root) throws IOException {
    try (var files = Files.walk(root)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        if (Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
          try (FileChannel c = FileChannel.open(file, StandardOpenOption.READ)) {
            c.force(true);
          }
        }
      }
    }
  }

  /**
   * Deletes, in {@code dir}, the temporary folders {@code <prefix><digits>} whose lock can be taken
   * (writes that were killed) and, when the target is in place, the {@code <prefix><digits>.old}
   * folders a killed publish renamed aside.
   */
  private static void removeLeftoverFolders(Path dir, String prefix, boolean targetExists) throws IOException {
    try (DirectoryStream<Path> folders = Files.newDirectoryStream(dir, p -> p.getFileName().toString()
        .startsWith(prefix) && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS))) {
      for (Path folder : folders) {
        String rest = folder.getFileName().toString().substring(prefix.length());
        if (targetExists && rest.endsWith(OLD_SUFFIX) && isDigits(rest.substring(0, rest.length()
            - OLD_SUFFIX.length()))) {
          deleteTree(folder);
        } else if (isDigits(rest)) {
          try (FileChannel channel = FileChannel.open(folder.resolve(FOLDER_LOCK), StandardOpenOption.WRITE)) {
            if (channel.tryLock() != null) { // nobody writes it
              deleteTree(folder);
            }
          } catch (OverlappingFileLockException | NoSuchFileException e) {
            // written by this process, being published, or already gone
          } catch (IOException e) {
            // cannot tell whether it is in use: leave it
          }
        }
      }
    }
  }

  private static boolean isDigits(String s) {
    return !s.isEmpty() && s.chars().allMatch(Character::isDigit);
  }
}
