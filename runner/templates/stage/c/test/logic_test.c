/* Native test of the stage's logic: ./test.sh */
#include <assert.h>
#include <stdio.h>

#include "{{name_snake}}_logic.h"

static unsigned lines[8];
static size_t seen;

static void record(unsigned line, const char *text, size_t len, void *data) {
  (void)text, (void)len, (void)data;
  lines[seen++] = line;
}

int main(void) {
  assert(has_suffix("app.py", ".py"));
  assert(!has_suffix("app.pyc", ".py"));
  assert(has_suffix("anything", ""));
  const char *text = "a = 1\n# TODO: one\nb = 2  # TODO two\nno marker\n";
  assert(scan_markers(text, "TODO", record, NULL) == 2);
  assert(seen == 2 && lines[0] == 2 && lines[1] == 3);
  assert(scan_markers("no newline TODO", "TODO", NULL, NULL) == 1);
  assert(scan_markers("", "TODO", NULL, NULL) == 0);
  puts("{{name}}: logic tests passed");
  return 0;
}
