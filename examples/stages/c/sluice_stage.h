/*
 * sluice_stage.h: a header-only helper for writing sluice stages in C on
 * the raw wit-bindgen bindings (stage.h, from `wit-bindgen c wit --world
 * stage`). Include stage.h first, then this file, in one .c file.
 *
 * Why it exists: with the bare bindings, adding one metric to a report is
 * a realloc of a {ptr, len} list, a heap copy of the name (everything
 * returned is freed by the generated post-return code, so a string literal
 * must never be returned), and an option struct for the unit; a finding
 * takes a dozen lines. These helpers do that bookkeeping and nothing else:
 * the types stay the generated ones, so anything the helpers do not cover
 * can still be set by hand on the same structs.
 *
 *   ss_info(ret, "todo-count", "0.1.0", SLUICE_STAGE_TYPES_STAGE_KIND_LINT, "Counts TODOs", schema);
 *   ss_info_capability(ret, SLUICE_STAGE_TYPES_CAPABILITY_WORKSPACE_READ);
 *
 *   ss_report_init(ret, "2 TODOs in 3 files");
 *   ss_metric(ret, "todo.count", 2);
 *   ss_gate(ret, "todo", SLUICE_STAGE_TYPES_VERDICT_PASS, 2, 5, "2 of at most 5");
 *   ss_output(ret, "count", "2");
 *   ss_finding(ret, "todo", SLUICE_STAGE_TYPES_FINDING_LEVEL_WARNING, "TODO left", "src/a.c", 12);
 *   ss_artifact(ret, "todo.txt", "text/plain", SLUICE_STAGE_TYPES_ARTIFACT_ROLE_REPORT);
 *   ss_log_kv(SLUICE_STAGE_LOG_LEVEL_INFO, "checked", "files", "3");
 *   return ss_failed(err, "cannot read %s", path);   // or ss_invalid_config, ss_denied
 *
 * Memory: every helper that fills a return value allocates (malloc) and
 * aborts on out-of-memory, as a trap is the only sensible end for a stage
 * without memory. What is passed to the log helpers stays the caller's.
 *
 * Config: ss_config_cstr() gives ctx->config as a NUL-terminated string;
 * ss_json_string()/ss_json_number() read a *top-level scalar* of it with a
 * deliberately small scanner (no nesting, no escapes beyond \" and \\). A
 * config with nested objects or lists wants a real JSON parser (cJSON,
 * jsmn); the runner has already checked it against the schema that
 * `describe` publishes, so the stage only sees well-formed config.
 */
#ifndef SLUICE_STAGE_H
#define SLUICE_STAGE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One more zeroed element at the end of a {ptr, len} list; returns it. */
static inline void *ss__grow(void *ptr, size_t len, size_t size) {
  void *p = realloc(ptr, (len + 1) * size);
  if (!p) abort();
  memset((char *)p + len * size, 0, size);
  return p;
}
#define SS_PUSH(list) \
  ((list).ptr = ss__grow((list).ptr, (list).len, sizeof *(list).ptr), &(list).ptr[(list).len++])

/* A heap copy of a C string, for return values. */
static inline stage_string_t ss_str(const char *s) {
  stage_string_t r;
  stage_string_dup(&r, s ? s : "");
  return r;
}

/* A heap string from a printf format, for return values. */
static inline stage_string_t ss_strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
  if (!buf) abort();
  va_start(ap, fmt);
  vsnprintf(buf, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
  va_end(ap);
  stage_string_t r = {(uint8_t *)buf, n > 0 ? (size_t)n : 0};
  return r;
}

/* A borrowed view of a C string, for arguments of imports (not returned). */
static inline stage_string_t ss_view(const char *s) {
  stage_string_t r = {(uint8_t *)s, s ? strlen(s) : 0};
  return r;
}

/* ---- logging, progress, cancellation ---- */

/* One log record at `level` (SLUICE_STAGE_LOG_LEVEL_INFO, …). */
static inline void ss_log(sluice_stage_log_level_t level, const char *message) {
  stage_string_t m = ss_view(message);
  stage_list_tuple2_string_string_t fields = {NULL, 0};
  sluice_stage_log_log(level, &m, &fields);
}

/* One log record with one `key=value` field. */
static inline void ss_log_kv(sluice_stage_log_level_t level, const char *message, const char *key,
                             const char *value) {
  stage_string_t m = ss_view(message);
  stage_tuple2_string_string_t field = {ss_view(key), ss_view(value)};
  stage_list_tuple2_string_string_t fields = {&field, 1};
  sluice_stage_log_log(level, &m, &fields);
}

/* One log record from a printf format. */
static inline void ss_logf(sluice_stage_log_level_t level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ss_log(level, buf);
}

/* `done` of `total` units (total 0: unknown), and what is being done. */
static inline void ss_progress(uint64_t done, uint64_t total, const char *message) {
  stage_string_t m = ss_view(message);
  sluice_stage_log_progress(done, total ? &total : NULL, &m);
}

/* Whether the runner asked the stage to stop (cheap; call between files). */
static inline bool ss_cancelled(void) { return sluice_stage_cancel_is_cancelled(); }

/* ---- describe ---- */

/* Fills plugin-info; `schema` (a JSON Schema of `with:`) may be NULL. */
static inline void ss_info(sluice_stage_types_plugin_info_t *ret, const char *name,
                           const char *version, uint8_t kind, const char *description,
                           const char *schema) {
  memset(ret, 0, sizeof *ret);
  ret->name = ss_str(name);
  ret->version = ss_str(version);
  ret->kind.tag = kind;
  ret->description = ss_str(description);
  if (schema) {
    ret->config_schema.is_some = true;
    ret->config_schema.val = ss_str(schema);
  }
}

/* Declares a capability without a value (workspace-read, workspace-write). */
static inline void ss_info_capability(sluice_stage_types_plugin_info_t *ret, uint8_t tag) {
  sluice_stage_types_capability_t *c = SS_PUSH(ret->capabilities);
  c->tag = tag;
}

/* ---- the report ---- */

static inline void ss_report_init(sluice_stage_types_report_t *r, const char *summary) {
  memset(r, 0, sizeof *r);
  r->summary = ss_str(summary);
}

/* Replaces the summary (markdown, one or a few lines). */
static inline void ss_report_summary(sluice_stage_types_report_t *r, stage_string_t summary) {
  stage_string_free(&r->summary);
  r->summary = summary;
}

static inline void ss_metric(sluice_stage_types_report_t *r, const char *name, double value) {
  sluice_stage_types_metric_t *m = SS_PUSH(r->metrics);
  m->name = ss_str(name);
  m->value = value;
}

/* A gate the stage decides itself (SLUICE_STAGE_TYPES_VERDICT_PASS, …). */
static inline void ss_gate(sluice_stage_types_report_t *r, const char *name, uint8_t verdict,
                           double observed, double threshold, const char *message) {
  sluice_stage_types_gate_t *g = SS_PUSH(r->gates);
  g->name = ss_str(name);
  g->verdict = verdict;
  g->observed.is_some = true;
  g->observed.val = observed;
  g->threshold.is_some = true;
  g->threshold.val = threshold;
  g->message = ss_str(message);
}

/* A small value for later stages: ${{ stages.<stage>.outputs.<name> }}. */
static inline void ss_output(sluice_stage_types_report_t *r, const char *name, const char *value) {
  stage_tuple2_string_string_t *o = SS_PUSH(r->outputs);
  o->f0 = ss_str(name);
  o->f1 = ss_str(value);
}

/* Describes a file the stage wrote under ctx->outputs_dir (`path` relative
 * to it) with a role (SLUICE_STAGE_TYPES_ARTIFACT_ROLE_REPORT, …). */
static inline void ss_artifact(sluice_stage_types_report_t *r, const char *path,
                               const char *media_type, uint8_t role) {
  sluice_stage_types_artifact_info_t *a = SS_PUSH(r->artifacts);
  a->path = ss_str(path);
  if (media_type) {
    a->media_type.is_some = true;
    a->media_type.val = ss_str(media_type);
  }
  a->role.is_some = true;
  a->role.val.tag = role;
}

/* The stage looked for findings (so far none): an empty SARIF is written. */
static inline void ss_findings_checked(sluice_stage_types_report_t *r) {
  r->findings.is_some = true;
}

/* One finding (SLUICE_STAGE_TYPES_FINDING_LEVEL_WARNING, …); `path` is
 * workspace-relative or NULL, `line` 1-based or 0 for the whole file. */
static inline sluice_stage_types_finding_t *ss_finding(sluice_stage_types_report_t *r,
                                                       const char *rule_id, uint8_t level,
                                                       const char *message, const char *path,
                                                       uint32_t line) {
  r->findings.is_some = true;
  sluice_stage_types_finding_t *f = SS_PUSH(r->findings.val);
  f->rule_id = ss_str(rule_id);
  f->level = level;
  f->message = ss_str(message);
  if (path) {
    f->location.is_some = true;
    f->location.val.path = ss_str(path);
    f->location.val.start_line = line;
  }
  return f;
}

/* ---- errors: `return ss_failed(err, "...");` from run ---- */

static inline bool ss_invalid_config(sluice_stage_types_stage_error_t *err, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  err->tag = SLUICE_STAGE_TYPES_STAGE_ERROR_INVALID_CONFIG;
  err->val.invalid_config = ss_str(buf);
  return false;
}

static inline bool ss_failed(sluice_stage_types_stage_error_t *err, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  err->tag = SLUICE_STAGE_TYPES_STAGE_ERROR_FAILED;
  err->val.failed = ss_str(buf);
  return false;
}

/* The stage lacked a capability without a value (workspace-read, …); the
 * runner tells the user which grant to add. */
static inline bool ss_denied(sluice_stage_types_stage_error_t *err, uint8_t capability) {
  err->tag = SLUICE_STAGE_TYPES_STAGE_ERROR_DENIED;
  err->val.denied.tag = capability;
  return false;
}

/* ---- config ---- */

/* ctx->config as a NUL-terminated heap string (free it). */
static inline char *ss_config_cstr(const sluice_stage_types_context_t *ctx) {
  char *s = malloc(ctx->config.len + 1);
  if (!s) abort();
  memcpy(s, ctx->config.ptr, ctx->config.len);
  s[ctx->config.len] = '\0';
  return s;
}

/* Where the value of top-level-looking key `key` starts in `json`, or NULL. */
static inline const char *ss__json_value(const char *json, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = strchr(json, '"'); p; p = strchr(p + 1, '"')) {
    if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
      const char *q = p + 2 + klen;
      while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
      if (*q != ':') continue;
      q++;
      while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
      return q;
    }
  }
  return NULL;
}

/* Copies the string value of `key` into `buf` (size `n`); false if absent
 * or not a string. */
static inline bool ss_json_string(const char *json, const char *key, char *buf, size_t n) {
  const char *v = ss__json_value(json, key);
  if (!v || *v != '"' || n == 0) return false;
  size_t i = 0;
  for (v++; *v && *v != '"' && i + 1 < n; v++) {
    if (*v == '\\' && v[1]) v++;
    buf[i++] = *v;
  }
  buf[i] = '\0';
  return true;
}

/* Reads the number value of `key`; false if absent or not a number. */
static inline bool ss_json_number(const char *json, const char *key, double *out) {
  const char *v = ss__json_value(json, key);
  if (!v) return false;
  char *end;
  double d = strtod(v, &end);
  if (end == v) return false;
  *out = d;
  return true;
}

#endif /* SLUICE_STAGE_H */
