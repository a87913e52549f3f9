// SPDX-License-Identifier: Apache-2.0
//
// File-size budget check: a sluice stage written in C (WIT sluice:stage@0.2.0).
//
//   with:
//     budgets:                     # required, at least one
//       - { path: "dist/*.js", max-bytes: 250000 }
//       - { path: "*.wasm", max-bytes: "2MiB" }
//     enforce: true                # default true: gate fails when a budget is exceeded; false: warns
//
// `path` is a glob (fnmatch): without `/` it matches file names anywhere in
// the workspace, with `/` the path relative to the workspace (`*` then also
// crosses directories, so `dist/*` is everything under dist/). A budget is
// the total size of the files it matches. `max-bytes` is a number or a
// string with a unit: B, K/KB/KiB, M/MB/MiB (all powers of 1024).
//
// Reports metrics `size.total` (bytes matched by any budget, each file
// once) and `size.over_budget` (budgets exceeded), gate `size-budget`, the
// artifact `size-report.json` (role `report`), one `size.<n>` output per
// budget, and one finding `size-budget` per exceeded budget, located at the
// largest file it matched (the runner writes findings as SARIF,
// `findings.sarif`). It logs through the `log` import with levels and
// fields, reports progress while it walks the workspace, and stops between
// files when the runner cancels it.
//
// Build: ./build.sh (wit-bindgen c against wit/v0.2 + clang-19 for
// wasm32-wasi + wasm-component-ld).

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stage.h"

#define WORKSPACE "/workspace"
#define MAX_BUDGETS 64

// ---------------------------------------------------------------- helpers

// A malloc'd printf. Everything returned to the host must be malloc'd: the
// generated post-return code frees it.
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static stage_string_t str_take(char *s) {
    stage_string_t r = {(uint8_t *)s, strlen(s)};
    return r;
}

static stage_string_t str(const char *s) {
    stage_string_t r;
    stage_string_dup(&r, s);
    return r;
}

// One record in the stage log. `fields` is NULL or a NULL-terminated list of
// key, value, key, value ...; the message is printf-formatted. The host
// copies what it is passed, so everything here stays ours to free.
static void slog(sluice_stage_log_level_t level, const char *const *fields, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *text = malloc((size_t)n + 1);
    va_start(ap, f);
    vsnprintf(text, (size_t)n + 1, f, ap);
    va_end(ap);
    size_t count = 0;
    while (fields && fields[2 * count]) count++;
    stage_tuple2_string_string_t pairs[count ? count : 1];
    for (size_t i = 0; i < count; i++) {
        pairs[i].f0 = (stage_string_t){(uint8_t *)fields[2 * i], strlen(fields[2 * i])};
        pairs[i].f1 = (stage_string_t){(uint8_t *)fields[2 * i + 1], strlen(fields[2 * i + 1])};
    }
    stage_string_t message = {(uint8_t *)text, (size_t)n};
    stage_list_tuple2_string_string_t list = {pairs, count};
    sluice_stage_log_log(level, &message, &list);
    free(text);
}

// Progress: `done` of an unknown total, and what is being looked at.
static void progress(uint64_t done, const char *what) {
    stage_string_t message = {(uint8_t *)what, strlen(what)};
    sluice_stage_log_progress(done, NULL, &message);
}

// ------------------------------------------------- a minimal JSON reader
// Enough for a `with:` block: objects, arrays, strings (with escapes),
// numbers, true/false/null. Values are views into the input.

typedef struct {
    const char *p;
    const char *end;
    char err[160];
} json_t;

static void skip_ws(json_t *j) {
    while (j->p < j->end && isspace((unsigned char)*j->p)) j->p++;
}

static int json_fail(json_t *j, const char *what) {
    if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s at offset %ld", what, (long)(j->end - j->p));
    return 0;
}

// Parses a string into a malloc'd buffer (escapes decoded; \u kept ASCII-only).
static int parse_string(json_t *j, char **out) {
    skip_ws(j);
    if (j->p >= j->end || *j->p != '"') return json_fail(j, "expected a string");
    j->p++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\' && j->p < j->end) {
            char e = *j->p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                if (j->end - j->p < 4) { free(s); return json_fail(j, "bad \\u escape"); }
                c = (char)strtol((char[]){j->p[0], j->p[1], j->p[2], j->p[3], 0}, NULL, 16);
                j->p += 4;
                break;
            default: c = e;
            }
        }
        if (len + 2 > cap) s = realloc(s, cap *= 2);
        s[len++] = c;
    }
    if (j->p >= j->end) { free(s); return json_fail(j, "unterminated string"); }
    j->p++;
    s[len] = 0;
    if (out) *out = s; else free(s);
    return 1;
}

static int parse_number(json_t *j, double *out) {
    skip_ws(j);
    char *end;
    double v = strtod(j->p, &end);
    if (end == j->p) return json_fail(j, "expected a number");
    j->p = end;
    if (out) *out = v;
    return 1;
}

static int literal(json_t *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) { j->p += n; return 1; }
    return 0;
}

// Iterates over an object: call with *first = 1; returns 1 with the key in
// *key (malloc'd) and the cursor on the value, 0 at the end or on error.
static int object_next(json_t *j, int *first, char **key) {
    skip_ws(j);
    if (*first) {
        if (j->p >= j->end || *j->p != '{') return json_fail(j, "expected an object");
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == '}') { j->p++; return 0; }
        *first = 0;
    } else {
        if (j->p < j->end && *j->p == '}') { j->p++; return 0; }
        if (j->p >= j->end || *j->p != ',') return json_fail(j, "expected `,` or `}`");
        j->p++;
    }
    if (!parse_string(j, key)) return 0;
    skip_ws(j);
    if (j->p >= j->end || *j->p != ':') { free(*key); return json_fail(j, "expected `:`"); }
    j->p++;
    return 1;
}

// Same for arrays: returns 1 with the cursor on the next element.
static int array_next(json_t *j, int *first) {
    skip_ws(j);
    if (*first) {
        if (j->p >= j->end || *j->p != '[') return json_fail(j, "expected a list");
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == ']') { j->p++; return 0; }
        *first = 0;
        return 1;
    }
    if (j->p < j->end && *j->p == ']') { j->p++; return 0; }
    if (j->p >= j->end || *j->p != ',') return json_fail(j, "expected `,` or `]`");
    j->p++;
    return 1;
}

// ---------------------------------------------------------------- config

typedef struct {
    char *path;
    double max_bytes;
    double total;   // bytes matched
    int files;      // files matched
    char *largest;  // the largest file matched (workspace-relative), or NULL
    double largest_bytes;
} budget_t;

typedef struct {
    budget_t budgets[MAX_BUDGETS];
    int n;
    int enforce;
} config_t;

// "2MiB" -> 2097152; returns -1 when not a size.
static double parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    while (*end == ' ') end++;
    double mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
    else if (*end == 'M') mult = 1024.0 * 1024, end++;
    else if (*end == 'G') mult = 1024.0 * 1024 * 1024, end++;
    if (mult > 1 && *end == 'i') end++;
    if (*end == 'B') end++;
    return *end ? -1 : v * mult;
}

// Parses `with:`; on error writes a malloc'd message to *err.
static int parse_config(const char *text, size_t len, config_t *cfg, char **err) {
    json_t j = {text, text + len, {0}};
    memset(cfg, 0, sizeof *cfg);
    cfg->enforce = 1;
    int have_budgets = 0, first = 1;
    char *key;
    while (object_next(&j, &first, &key)) {
        if (strcmp(key, "budgets") == 0) {
            have_budgets = 1;
            int afirst = 1;
            while (array_next(&j, &afirst)) {
                if (cfg->n == MAX_BUDGETS) { *err = fmt("with.budgets: at most %d budgets", MAX_BUDGETS); free(key); return 0; }
                budget_t *b = &cfg->budgets[cfg->n];
                b->max_bytes = -1;
                int ofirst = 1;
                char *k;
                while (object_next(&j, &ofirst, &k)) {
                    if (strcmp(k, "path") == 0) {
                        free(b->path);
                        parse_string(&j, &b->path);
                    } else if (strcmp(k, "max-bytes") == 0) {
                        skip_ws(&j);
                        if (j.p < j.end && *j.p == '"') {
                            char *s = NULL;
                            if (parse_string(&j, &s)) b->max_bytes = parse_size(s);
                            free(s);
                        } else {
                            parse_number(&j, &b->max_bytes);
                        }
                    } else {
                        *err = fmt("with.budgets[%d].%s: unknown key (known: path, max-bytes)", cfg->n, k);
                        free(k); free(key);
                        return 0;
                    }
                    free(k);
                }
                if (j.err[0]) break;
                if (!b->path || !b->path[0]) { *err = fmt("with.budgets[%d].path: required, a glob such as `dist/*.js`", cfg->n); free(key); return 0; }
                if (b->max_bytes < 0) { *err = fmt("with.budgets[%d].max-bytes: required, a size such as 250000 or \"2MiB\"", cfg->n); free(key); return 0; }
                cfg->n++;
            }
        } else if (strcmp(key, "enforce") == 0) {
            skip_ws(&j);
            if (literal(&j, "true")) cfg->enforce = 1;
            else if (literal(&j, "false")) cfg->enforce = 0;
            else { *err = fmt("with.enforce: must be true or false"); free(key); return 0; }
        } else {
            *err = fmt("with.%s: unknown key (known: budgets, enforce)", key);
            free(key);
            return 0;
        }
        free(key);
        if (j.err[0]) break;
    }
    if (j.err[0]) { *err = fmt("with: is not valid JSON: %s", j.err); return 0; }
    if (!have_budgets || cfg->n == 0) { *err = fmt("with.budgets: required, a list of { path, max-bytes }"); return 0; }
    return 1;
}

// ---------------------------------------------------------------- the walk

static int matches(const char *pattern, const char *rel) {
    if (strchr(pattern, '/')) return fnmatch(pattern, rel, 0) == 0;
    const char *base = strrchr(rel, '/');
    return fnmatch(pattern, base ? base + 1 : rel, 0) == 0;
}

static int skip_dir(const char *name) {
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".git") == 0 ||
           strcmp(name, ".sluice") == 0 || strcmp(name, "node_modules") == 0;
}

// Adds every regular file under WORKSPACE/rel to the budgets it matches.
// `seen` counts the files looked at, for progress. Stops with an error when
// the runner cancels the stage.
static int walk(config_t *cfg, const char *rel, double *total, int *files, uint64_t *seen, char **err) {
    char *dirpath = rel[0] ? fmt("%s/%s", WORKSPACE, rel) : fmt("%s", WORKSPACE);
    DIR *d = opendir(dirpath);
    if (!d) {
        *err = fmt("cannot list %s: %s", dirpath, strerror(errno));
        free(dirpath);
        return 0;
    }
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d)) != NULL) {
        if (skip_dir(e->d_name)) continue;
        char *child = rel[0] ? fmt("%s/%s", rel, e->d_name) : fmt("%s", e->d_name);
        char *full = fmt("%s/%s", WORKSPACE, child);
        struct stat st;
        if (lstat(full, &st) != 0) {
            const char *fields[] = {"path", child, "error", strerror(errno), NULL};
            slog(SLUICE_STAGE_LOG_LEVEL_WARN, fields, "skipping %s", child);
        } else if (S_ISDIR(st.st_mode)) {
            ok = walk(cfg, child, total, files, seen, err);
        } else if (S_ISREG(st.st_mode)) {
            if (sluice_stage_cancel_is_cancelled()) {
                *err = fmt("cancelled after %llu file(s)", (unsigned long long)*seen);
                ok = 0;
            } else {
                progress(++*seen, child);
            }
            int counted = 0;
            for (int i = 0; ok && i < cfg->n; i++) {
                budget_t *b = &cfg->budgets[i];
                if (!matches(b->path, child)) continue;
                b->total += (double)st.st_size;
                b->files++;
                if (!b->largest || (double)st.st_size > b->largest_bytes) {
                    free(b->largest);
                    b->largest = fmt("%s", child);
                    b->largest_bytes = (double)st.st_size;
                }
                if (!counted) { *total += (double)st.st_size; (*files)++; counted = 1; }
            }
        }
        free(child);
        free(full);
    }
    closedir(d);
    free(dirpath);
    return ok;
}

static void json_escape(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

// ---------------------------------------------------------------- exports

void exports_sluice_stage_plugin_describe(sluice_stage_types_plugin_info_t *ret) {
    ret->name = str("size-budget");
    ret->version = str("0.2.0");
    ret->kind.tag = SLUICE_STAGE_TYPES_STAGE_KIND_LINT;
    ret->description = str("Checks that workspace files stay within size budgets.");
    ret->config_schema.is_some = true;
    ret->config_schema.val = str(
        "{\"type\":\"object\",\"required\":[\"budgets\"],\"additionalProperties\":false,"
        "\"properties\":{\"enforce\":{\"type\":\"boolean\"},"
        "\"budgets\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"object\","
        "\"required\":[\"path\",\"max-bytes\"],\"additionalProperties\":false,"
        "\"properties\":{\"path\":{\"type\":\"string\",\"minLength\":1},"
        "\"max-bytes\":{\"type\":[\"number\",\"string\"]}}}}}}");
    ret->capabilities.len = 1;
    ret->capabilities.ptr = calloc(1, sizeof(sluice_stage_types_capability_t));
    ret->capabilities.ptr[0].tag = SLUICE_STAGE_TYPES_CAPABILITY_WORKSPACE_READ;
}

// All of them, not only the first `n`: a `with:` refused halfway leaves a
// path in the budget it was reading (unused entries are zeroed).
static void free_budgets(config_t *cfg) {
    for (int i = 0; i < MAX_BUDGETS; i++) {
        free(cfg->budgets[i].path);
        free(cfg->budgets[i].largest);
        cfg->budgets[i].path = cfg->budgets[i].largest = NULL;
    }
    cfg->n = 0;
}

// `invalid-config` or `failed` with a malloc'd message (which the generated
// post-return code frees).
static bool fail_with(sluice_stage_types_stage_error_t *err, uint8_t tag, char *msg) {
    slog(SLUICE_STAGE_LOG_LEVEL_ERROR, NULL, "%s", msg);
    err->tag = tag;
    if (tag == SLUICE_STAGE_TYPES_STAGE_ERROR_INVALID_CONFIG) err->val.invalid_config = str_take(msg);
    else err->val.failed = str_take(msg);
    return false;
}

// The finding for an exceeded budget, at the largest file it matched.
static void over_finding(const budget_t *b, int enforce, sluice_stage_types_finding_t *f) {
    f->rule_id = str("size-budget");
    f->level = enforce ? SLUICE_STAGE_TYPES_FINDING_LEVEL_ERROR : SLUICE_STAGE_TYPES_FINDING_LEVEL_WARNING;
    f->message = str_take(fmt("%s is %.0f bytes in %d file(s), budget %.0f; the largest is %s (%.0f bytes)", b->path,
                              b->total, b->files, b->max_bytes, b->largest ? b->largest : "?", b->largest_bytes));
    if (b->largest) {
        f->location.is_some = true;
        f->location.val.path = str(b->largest);
        f->location.val.start_line = 0; // the whole file
    }
    // One budget is one finding across runs, whatever the sizes.
    f->fingerprint.is_some = true;
    f->fingerprint.val = str_take(fmt("size-budget:%s", b->path));
}

bool exports_sluice_stage_plugin_run(sluice_stage_types_context_t *ctx, sluice_stage_types_report_t *ret,
                                     sluice_stage_types_stage_error_t *err) {
    static config_t cfg;
    char *msg = NULL;
    if (!parse_config((const char *)ctx->config.ptr, ctx->config.len, &cfg, &msg)) {
        sluice_stage_types_context_free(ctx);
        free_budgets(&cfg);
        return fail_with(err, SLUICE_STAGE_TYPES_STAGE_ERROR_INVALID_CONFIG, msg);
    }
    char *outdir = ctx->outputs_dir.len ? fmt("%.*s", (int)ctx->outputs_dir.len, (const char *)ctx->outputs_dir.ptr)
                                        : fmt("/artifacts/out");
    {
        // The runner already tags every record with the stage and the run.
        char *budgets = fmt("%d", cfg.n);
        const char *fields[] = {"budgets", budgets, NULL};
        slog(SLUICE_STAGE_LOG_LEVEL_INFO, fields, "checking %d budget(s)", cfg.n);
        free(budgets);
    }
    sluice_stage_types_context_free(ctx);

    struct stat st;
    if (stat(WORKSPACE, &st) != 0) {
        free(outdir);
        free_budgets(&cfg);
        // The runner names the grant to add.
        err->tag = SLUICE_STAGE_TYPES_STAGE_ERROR_DENIED;
        err->val.denied.tag = SLUICE_STAGE_TYPES_CAPABILITY_WORKSPACE_READ;
        return false;
    }
    double total = 0;
    int files = 0;
    uint64_t seen = 0;
    if (!walk(&cfg, "", &total, &files, &seen, &msg)) {
        free(outdir);
        free_budgets(&cfg);
        return fail_with(err, SLUICE_STAGE_TYPES_STAGE_ERROR_FAILED, msg);
    }
    progress(seen, "done");

    int over = 0;
    for (int i = 0; i < cfg.n; i++) {
        budget_t *b = &cfg.budgets[i];
        int bad = b->total > b->max_bytes;
        over += bad;
        char *bytes = fmt("%.0f", b->total), *max = fmt("%.0f", b->max_bytes), *n = fmt("%d", b->files);
        const char *fields[] = {"budget", b->path, "bytes", bytes, "max-bytes", max, "files", n, NULL};
        slog(bad ? SLUICE_STAGE_LOG_LEVEL_WARN : SLUICE_STAGE_LOG_LEVEL_INFO, fields, "%s %s: %.0f of %.0f bytes in %d file(s)",
             bad ? "OVER" : "ok", b->path, b->total, b->max_bytes, b->files);
        free(bytes); free(max); free(n);
    }

    // The artifact.
    char *report_path = fmt("%s/size-report.json", outdir);
    FILE *f = fopen(report_path, "w");
    if (!f) {
        char *m = fmt("writing %s: %s", report_path, strerror(errno));
        free(report_path); free(outdir);
        free_budgets(&cfg);
        return fail_with(err, SLUICE_STAGE_TYPES_STAGE_ERROR_FAILED, m);
    }
    fprintf(f, "{\n  \"total-bytes\": %.0f,\n  \"files\": %d,\n  \"budgets\": [", total, files);
    for (int i = 0; i < cfg.n; i++) {
        budget_t *b = &cfg.budgets[i];
        fprintf(f, "%s\n    {\"path\": ", i ? "," : "");
        json_escape(f, b->path);
        fprintf(f, ", \"max-bytes\": %.0f, \"bytes\": %.0f, \"files\": %d, \"over\": %s}", b->max_bytes,
                b->total, b->files, b->total > b->max_bytes ? "true" : "false");
    }
    fprintf(f, "\n  ]\n}\n");
    int closed = fclose(f);
    free(report_path);
    free(outdir);
    if (closed != 0) {
        free_budgets(&cfg);
        return fail_with(err, SLUICE_STAGE_TYPES_STAGE_ERROR_FAILED, fmt("writing size-report.json failed"));
    }

    // The report.
    ret->summary = str_take(fmt("Size budgets: %d of %d exceeded, %.0f bytes in %d file(s)", over, cfg.n, total, files));
    ret->metrics.len = 2;
    ret->metrics.ptr = calloc(2, sizeof(sluice_stage_types_metric_t));
    ret->metrics.ptr[0].name = str("size.total");
    ret->metrics.ptr[0].value = total;
    ret->metrics.ptr[0].unit.is_some = true;
    ret->metrics.ptr[0].unit.val = str("bytes");
    ret->metrics.ptr[1].name = str("size.over_budget");
    ret->metrics.ptr[1].value = over;

    ret->gates.len = 1;
    ret->gates.ptr = calloc(1, sizeof(sluice_stage_types_gate_t));
    sluice_stage_types_gate_t *g = &ret->gates.ptr[0];
    g->name = str("size-budget");
    g->verdict = over == 0 ? SLUICE_STAGE_TYPES_VERDICT_PASS
                 : cfg.enforce ? SLUICE_STAGE_TYPES_VERDICT_FAIL
                               : SLUICE_STAGE_TYPES_VERDICT_WARN;
    g->observed.is_some = true;
    g->observed.val = over;
    g->threshold.is_some = true;
    g->threshold.val = 0;
    if (over == 0) {
        g->message = str_take(fmt("all %d budget(s) hold", cfg.n));
    } else {
        for (int i = 0; i < cfg.n; i++) {
            budget_t *b = &cfg.budgets[i];
            if (b->total > b->max_bytes) {
                g->message = str_take(fmt("%d budget(s) exceeded, first: %s is %.0f bytes, budget %.0f", over,
                                          b->path, b->total, b->max_bytes));
                break;
            }
        }
    }

    ret->outputs.len = (size_t)cfg.n;
    ret->outputs.ptr = calloc((size_t)cfg.n, sizeof(stage_tuple2_string_string_t));
    for (int i = 0; i < cfg.n; i++) {
        ret->outputs.ptr[i].f0 = str_take(fmt("size.%d", i));
        ret->outputs.ptr[i].f1 = str_take(fmt("%.0f", cfg.budgets[i].total));
    }

    ret->artifacts.len = 1;
    ret->artifacts.ptr = calloc(1, sizeof(sluice_stage_types_artifact_info_t));
    sluice_stage_types_artifact_info_t *a = &ret->artifacts.ptr[0];
    a->path = str("size-report.json");
    a->media_type.is_some = true;
    a->media_type.val = str("application/json");
    a->role.is_some = true;
    a->role.val.tag = SLUICE_STAGE_TYPES_ARTIFACT_ROLE_REPORT;
    a->annotations.len = 0;
    a->annotations.ptr = NULL;

    // `some` even when every budget holds: the check ran and found nothing.
    ret->findings.is_some = true;
    ret->findings.val.len = (size_t)over;
    ret->findings.val.ptr = over ? calloc((size_t)over, sizeof(sluice_stage_types_finding_t)) : NULL;
    for (int i = 0, k = 0; i < cfg.n; i++) {
        if (cfg.budgets[i].total > cfg.budgets[i].max_bytes) over_finding(&cfg.budgets[i], cfg.enforce, &ret->findings.val.ptr[k++]);
    }

    free_budgets(&cfg);
    return true;
}
