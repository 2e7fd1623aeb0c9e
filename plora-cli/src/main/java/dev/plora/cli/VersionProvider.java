package dev.plora.cli;

import dev.plora.Version;
import picocli.CommandLine;

final class VersionProvider implements CommandLine.IVersionProvider {
  @Override
  public String[] getVersion() {
    return new String[] {"plora " + Version.get()};
  }
}
