/* The stage's logic, free of the bindings, so test/logic_test.c can run it
 * natively (./test.sh). */
#ifndef {{name_snake}}_LOGIC_H
#define {{name_snake}}_LOGIC_H

#include <stddef.h>
#include <string.h>

/* Whether `name` ends with `suffix` (an empty suffix matches everything). */
static inline int has_suffix(const char *name, const char *suffix) {
  size_t n = strlen(name), s = strlen(suffix);
  return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* Calls `found(line, text_of_line, len, data)` for every line of `text`
 * that contains `marker`; returns how many there were. */
static inline size_t scan_markers(const char *text, const char *marker,
                                  void (*found)(unsigned line, const char *start, size_t len,
                                                void *data),
                                  void *data) {
  size_t count = 0, mlen = strlen(marker);
  unsigned line = 1;
  const char *start = text;
  while (*start) {
    const char *end = strchr(start, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    for (size_t i = 0; mlen > 0 && i + mlen <= len; i++) {
      if (memcmp(start + i, marker, mlen) == 0) {
        count++;
        if (found) found(line, start, len, data);
        break;
      }
    }
    if (!end) break;
    start = end + 1;
    line++;
  }
  return count;
}

#endif
