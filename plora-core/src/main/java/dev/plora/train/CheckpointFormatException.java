package dev.plora.train;

import dev.plora.io.SafetensorsFormatException;
import java.nio.file.Path;

/**
 * A checkpoint that cannot be loaded into this run: not a checkpoint, corrupt (a checksum fails),
 * malformed metadata, or the state of another model. The message names the file and the field;
 * the run's state is as it was before the load.
 */
public final class CheckpointFormatException extends IllegalArgumentException {
  CheckpointFormatException(Path file, String field, String problem) {
    super(file + ": " + field + ": " + problem);
  }

  CheckpointFormatException(SafetensorsFormatException cause) {
    super(cause.getMessage(), cause);
  }
}
