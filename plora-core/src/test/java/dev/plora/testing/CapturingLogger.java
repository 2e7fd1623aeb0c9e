package dev.plora.testing;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;

/** An SLF4J logger that keeps each message, formatted, with its level: for tests of what is logged. */
public final class CapturingLogger extends LegacyAbstractLogger {
  /** One logged message. */
  public record Line(Level level, String message) {}

  private final Level threshold;
  private final List<Line> lines = new ArrayList<>();

  /** Keeps the messages at {@code threshold} and above. */
  public CapturingLogger(String name, Level threshold) {
    this.name = name;
    this.threshold = threshold;
  }

  public synchronized List<Line> lines() {
    return List.copyOf(lines);
  }

  /** The messages logged at {@code level}, in order. */
  public List<String> messages(Level level) {
    return lines().stream().filter(l -> l.level() == level).map(Line::message).toList();
  }

  private boolean enabled(Level level) {
    return level.toInt() >= threshold.toInt();
  }

  @Override
  public boolean isTraceEnabled() {
    return enabled(Level.TRACE);
  }

  @Override
  public boolean isDebugEnabled() {
    return enabled(Level.DEBUG);
  }

  @Override
  public boolean isInfoEnabled() {
    return enabled(Level.INFO);
  }

  @Override
  public boolean isWarnEnabled() {
    return enabled(Level.WARN);
  }

  @Override
  public boolean isErrorEnabled() {
    return enabled(Level.ERROR);
  }

  @Override
  protected String getFullyQualifiedCallerName() {
    return null;
  }

  @Override
  protected synchronized void handleNormalizedLoggingCall(Level level, Marker marker, String pattern, Object[] args,
      Throwable thrown) {
    lines.add(new Line(level, MessageFormatter.basicArrayFormat(pattern, args)));
  }
}
