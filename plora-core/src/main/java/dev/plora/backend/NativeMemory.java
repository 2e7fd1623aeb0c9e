package dev.plora.backend;

import dev.plora.tensor.TensorStorage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.LoggerFactory;

/**
 * The native memory of one backend's tensors: allocation through the backend, the count of bytes
 * held, and leak tracking. Each allocation is freed exactly once: when its tensor is closed, or —
 * a leak, counted and optionally reported with its allocation site — when the garbage collector
 * finds the tensor unreachable.
 */
final class NativeMemory {
  private static final Cleaner CLEANER = Cleaner.create();
  private static final AtomicLong LEAKS = new AtomicLong();
  /** Leak reports go to this class's SLF4J logger, as warnings, unless a reporter is set. */
  private static final Consumer<String> LOG_WARNING = LoggerFactory.getLogger(NativeMemory.class)::warn;
  private static volatile Consumer<String> leakReporter = LOG_WARNING;

  private final Backend backend;
  private final AtomicLong bytes = new AtomicLong();

  NativeMemory(Backend backend) {
    this.backend = backend;
  }

  /** Bytes held by this backend's live allocations. */
  long bytes() {
    return bytes.get();
  }

  /** A fresh allocation of {@code size} (> 0) bytes; the caller holds the backend's lock. */
  TensorStorage allocate(long size) {
    long address = backend.allocateBytes(size);
    bytes.addAndGet(size);
    return new Storage(address, size);
  }

  static boolean tracksLeaks() {
    return Boolean.getBoolean("plora.trackLeaks");
  }

  static long leaked() {
    return LEAKS.get();
  }

  static void setLeakReporter(Consumer<String> reporter) {
    leakReporter = reporter == null ? LOG_WARNING : reporter;
  }

  private final class Storage extends TensorStorage {
    private final Reclaim reclaim;
    private final Cleaner.Cleanable cleanable;

    Storage(long address, long size) {
      super(address, size);
      reclaim = new Reclaim(NativeMemory.this, address, size, tracksLeaks() ? new Throwable("allocated here") : null);
      cleanable = CLEANER.register(this, reclaim);
    }

    @Override
    public Backend backend() {
      return backend;
    }

    @Override
    protected void free(long address, long size) {
      reclaim.explicit = true;
      cleanable.clean();
    }
  }

  /** Frees one allocation. Holds no reference to the storage, so that the storage can be collected. */
  private static final class Reclaim implements Runnable {
    private final NativeMemory memory;
    private final long address;
    private final long size;
    private final Throwable site;
    volatile boolean explicit;

    Reclaim(NativeMemory memory, long address, long size, Throwable site) {
      this.memory = memory;
      this.address = address;
      this.size = size;
      this.site = site;
    }

    @Override
    public void run() {
      Backend backend = memory.backend;
      if (!explicit) {
        LEAKS.incrementAndGet();
        if (site != null) {
          StringWriter trace = new StringWriter();
          site.printStackTrace(new PrintWriter(trace));
          leakReporter.accept("plora: a tensor of " + size + " bytes on " + backend.name()
              + " was garbage-collected without close(); its memory is reclaimed. " + trace);
        }
      }
      synchronized (backend) { // never while an operation of this backend runs
        backend.freeBytes(address, size);
        memory.bytes.addAndGet(-size);
      }
    }
  }
}
