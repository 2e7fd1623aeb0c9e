package dev.plora.text;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's string methods for chat templates, which call them on message contents
 * ({@code content.strip()}, {@code content.split('</think>')[-1].lstrip('\n')},
 * {@code content.startswith('<tool_response>')}). Without this, Jinjava would call Java's String
 * methods: no {@code startswith} or {@code lstrip}, and a {@code split} that takes a regex.
 */
final class PyStringMethods extends ELResolver {

  @Override
  public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
    if (!(base instanceof String s) || method == null) {
      return null;
    }
    Object[] p = params == null ? new Object[0] : params;
    Object result = call(s, method.toString(), p);
    if (result != NOT_A_METHOD) {
      context.setPropertyResolved(true);
      return result;
    }
    return null;
  }

  private static final Object NOT_A_METHOD = new Object();

  private static Object call(String s, String name, Object[] p) {
    return switch (name + "/" + p.length) {
      case "strip/0", "strip/1" -> rstrip(lstrip(s, arg(p, 0)), arg(p, 0));
      case "lstrip/0", "lstrip/1" -> lstrip(s, arg(p, 0));
      case "rstrip/0", "rstrip/1" -> rstrip(s, arg(p, 0));
      case "split/0", "split/1", "split/2" -> split(s, arg(p, 0), p.length > 1 ? ((Number) p[1]).intValue() : -1);
      case "startswith/1" -> anyOf(p[0]).stream().anyMatch(s::startsWith);
      case "endswith/1" -> anyOf(p[0]).stream().anyMatch(s::endsWith);
      case "upper/0" -> s.toUpperCase(Locale.ROOT);
      case "lower/0" -> s.toLowerCase(Locale.ROOT);
      case "replace/2" -> s.replace(String.valueOf(p[0]), String.valueOf(p[1]));
      case "find/1" -> s.indexOf(String.valueOf(p[0]));
      case "join/1" -> join(s, p[0]);
      default -> NOT_A_METHOD;
    };
  }

  private static String arg(Object[] p, int i) {
    return i < p.length && p[i] != null ? p[i].toString() : null;
  }

  /** Python strips whitespace when no characters are given. */
  private static boolean stripped(int c, String chars) {
    return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
  }

  static String lstrip(String s, String chars) {
    int i = 0;
    while (i < s.length() && stripped(s.charAt(i), chars)) {
      i++;
    }
    return s.substring(i);
  }

  static String rstrip(String s, String chars) {
    int j = s.length();
    while (j > 0 && stripped(s.charAt(j - 1), chars)) {
      j--;
    }
    return s.substring(0, j);
  }

  /** str.split: on a literal separator keeping empty parts, or on whitespace runs dropping them. */
  static List<String> split(String s, String sep, int maxSplit) {
    List<String> parts = new ArrayList<>();
    if (sep == null) {
      int i = 0;
      while (i < s.length()) {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
          i++;
        }
        if (i == s.length()) {
          break;
        }
        if (maxSplit >= 0 && parts.size() == maxSplit) {
          parts.add(rstrip(s.substring(i), null));
          break;
        }
        int j = i;
        while (j < s.length() && !Character.isWhitespace(s.charAt(j))) {
          j++;
        }
        parts.add(s.substring(i, j));
        i = j;
      }
      return parts;
    }
    if (sep.isEmpty()) {
      throw new IllegalArgumentException("split: empty separator");
    }
    int from = 0;
    for (int at; (maxSplit < 0 || parts.size() < maxSplit) && (at = s.indexOf(sep, from)) >= 0; from = at + sep.length()) {
      parts.add(s.substring(from, at));
    }
    parts.add(s.substring(from));
    return parts;
  }

  /** startswith/endswith take one string or a tuple of them. */
  private static List<String> anyOf(Object prefixes) {
    List<String> all = new ArrayList<>();
    if (prefixes instanceof Iterable<?> list) {
      list.forEach(x -> all.add(String.valueOf(x)));
    } else {
      all.add(String.valueOf(prefixes));
    }
    return all;
  }

  private static String join(String separator, Object items) {
    List<String> parts = new ArrayList<>();
    if (items instanceof Iterable<?> list) {
      list.forEach(x -> parts.add(String.valueOf(x)));
    }
    return String.join(separator, parts);
  }

  // Properties are left to the resolvers after this one.

  @Override
  public Object getValue(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public Class<?> getType(ELContext context, Object base, Object property) {
    return null;
  }

  @Override
  public void setValue(ELContext context, Object base, Object property, Object value) {}

  @Override
  public boolean isReadOnly(ELContext context, Object base, Object property) {
    return true;
  }

  @Override
  public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
    return null;
  }

  @Override
  public Class<?> getCommonPropertyType(ELContext context, Object base) {
    return null;
  }
}
