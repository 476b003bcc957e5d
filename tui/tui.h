/*
 * tui.h -- L5: `minikora tui`, the full-screen ncurses console.
 *
 * The TUI is a client of the admin HTTP API and nothing else: it never links
 * against the cluster's internals, so it can watch a cluster in another
 * process (or another container) exactly as it watches its own.  Everything
 * it shows comes from GET /v1/... and everything it does is a POST that a
 * script could send too.
 *
 * This is the module's only public header; main.c calls mk_tui_main().
 * curses.h is included by tui/ alone, curl.h and jansson.h by tui/http.c
 * and tui/model.c (see tui_int.h).
 */
#ifndef MK_TUI_H
#define MK_TUI_H

/* Run `minikora tui [--admin URL] [--interval MS] [--no-color]`.  argv holds
 * the arguments after "tui" (argc of them).  Returns the process exit code:
 * 0 after q (or Ctrl-C), 2 for a usage error, 1 when there is no terminal.
 * Runs on the calling thread until the user quits. */
int mk_tui_main(int argc, char **argv);

#endif /* MK_TUI_H */
