package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// runFlags are shared by `run` and the playbook verbs.
type runFlags struct {
	nodes    []string
	all      bool
	params   []string
	parallel int
	timeout  time.Duration
	wait     bool
	asJSON   bool
	// recoverFirst runs the recover playbook on nodes an interrupted run
	// left before the script (the verbs do it themselves, before preparing).
	recoverFirst bool
	// report, when set, prints the results in place of the summary table
	// (and returns the error for failed runs).
	report func(a *app.App, results []runtime.Result) error
}

func (f *runFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.nodes, "node", nil, "node name or uuid (repeatable)")
	fl.BoolVar(&f.all, "all", false, "run on every node")
	fl.StringArrayVar(&f.params, "param", nil, "script parameter KEY=VALUE (repeatable)")
	fl.IntVar(&f.parallel, "parallel", 0, "runs at once (default [lightsout] max_parallel)")
	fl.DurationVar(&f.timeout, "timeout", 0, "timeout of each run (default [lightsout] run_timeout)")
	fl.BoolVar(&f.wait, "wait", false, "wait for locked nodes instead of failing")
	fl.BoolVar(&f.asJSON, "json", false, "print the results as JSON")
}

// check validates the numeric flags (before anything changes).
func (f *runFlags) check(cmd *cobra.Command) error {
	fl := cmd.Flags()
	return app.CheckRunLimits(f.parallel, fl.Changed("parallel"), f.timeout, fl.Changed("timeout"))
}

func (f *runFlags) paramMap() (map[string]string, error) {
	out := map[string]string{}
	for i, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usage("--param %q: expected KEY=VALUE in --param number %d (%s)", secrets.Mask, i+1, app.NotShown)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// execute runs script on the selected nodes and prints a summary.
func (f *runFlags) execute(cmd *cobra.Command, g *globals, a *app.App, script string, extra map[string]string) error {
	ctx := cmd.Context()
	params, err := f.paramMap()
	if err != nil {
		return err
	}
	for k, v := range extra {
		params[k] = v
	}
	if f.all && len(f.nodes) > 0 {
		return usage("use either --node or --all, not both")
	}
	nodes, err := a.ResolveNodes(ctx, f.nodes, f.all)
	if err != nil {
		return err
	}
	if f.all && len(nodes) == 0 {
		return usage("--all: there are no nodes (see `lightsout node create` or `node import`)")
	}
	if f.all {
		if nodes, err = a.SkipMaintenance(ctx, script, nodes); err != nil {
			return err
		}
		if len(nodes) == 0 {
			return usage("--all: every node is in maintenance (see `lightsout node list`)")
		}
	} else if err := a.CheckMaintenance(ctx, script, nodes); err != nil {
		return err
	}
	if f.recoverFirst {
		if err := recoverNodes(ctx, g, a, nodes); err != nil {
			return err
		}
	}
	req := runtime.RunRequest{Script: script, Params: params, Timeout: f.timeout, Wait: f.wait}
	var results []runtime.Result
	if len(nodes) == 0 {
		res, err := a.Engine.Run(ctx, req)
		if err != nil && res.RunID == 0 {
			return err
		}
		results = []runtime.Result{res}
	} else {
		if _, err := a.Engine.Scripts().Find(script); err != nil && !strings.HasSuffix(script, ".lua") {
			return &runtime.UsageError{Err: err}
		}
		progress := newProgress(g, len(nodes))
		req.OnStep, req.OnEvent = progress.step, progress.event
		results, _ = a.Engine.RunMany(ctx, req, nodes, f.parallel, progress.done)
		progress.close()
	}
	if f.report != nil {
		return f.report(a, results)
	}
	return printResults(g, results, f.asJSON)
}

// printResults prints the summary table (or JSON) and returns a
// runFailedError when any run did not succeed.
func printResults(g *globals, results []runtime.Result, asJSON bool) error {
	failed := 0
	for _, r := range results {
		if !r.Succeeded() {
			failed++
		}
	}
	if asJSON {
		if err := printJSON(g.stdout, results); err != nil {
			return err
		}
	} else if len(results) > summaryAbove {
		if err := printSummary(g.stdout, results); err != nil {
			return err
		}
	} else {
		t := newTable(g.stdout, "RUN", "NODE", "SCRIPT", "STATUS", "DURATION", "ERROR")
		for _, r := range results {
			t.row(r.RunID, orDash(r.Node), r.Script, r.Status, r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond), firstLine(r.Error))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		if len(results) == 1 {
			return &runFailedError{msg: fmt.Sprintf("run %d %s: %s", results[0].RunID, results[0].Status, results[0].Error)}
		}
		return &runFailedError{msg: fmt.Sprintf("%d of %d runs did not succeed (see `lightsout runs show ID`)", failed, len(results))}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	if s == "" {
		return "-"
	}
	return s
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SCRIPT [--node NAME]... [--all] [--param K=V]...",
		Short: "Run a Lua script (bundled or site name, or a .lua path) on nodes",
		Long: `Run a Lua script on one node, several nodes (one run each, concurrently, bounded by
--parallel) or none. Every run is recorded: see "lightsout runs show ID".
Exit status: 0 when every run succeeded, 1 when any failed, 2 on bad usage.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeScripts(g),
		PreRunE:           func(cmd *cobra.Command, _ []string) error { return f.check(cmd) },
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			// like the verbs: a node an interrupted run left is recovered first
			f.recoverFirst = args[0] != app.ScriptRecover
			return f.execute(cmd, g, a, args[0], nil)
		}),
	}
	f.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("node", completeNodes(g))
	return cmd
}

func newRunsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "runs", Short: "Inspect recorded runs"}
	cmd.AddCommand(runsListCmd(g), runsShowCmd(g), runsLogCmd(g), runsPruneCmd(g))
	return cmd
}

// runJSON is the stable `runs list --json` schema.
type runJSON struct {
	ID         int64      `json:"id"`
	Script     string     `json:"script"`
	Node       string     `json:"node"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func toRunJSON(a *app.App, r *store.Run) runJSON {
	return runJSON{ID: r.ID, Script: r.Script, Node: r.NodeName, Status: r.Status, Error: a.Redactor.String(r.Error),
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
}

func runsListCmd(g *globals) *cobra.Command {
	var node, status string
	var limit int
	var before, after int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs (page with --limit and --before/--after)",
		Args:  cobra.NoArgs,
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			if err := app.CheckIntFlag("limit", int64(limit), 0, math.MaxInt32, "0 lists every run"); err != nil {
				return err
			}
			for _, fl := range []struct {
				name string
				v    int64
			}{{"before", before}, {"after", after}} {
				if err := app.CheckIntFlag(fl.name, fl.v, 0, math.MaxInt64, "a run id; 0 for no bound"); err != nil {
					return err
				}
			}
			runs, err := a.Store.ListRuns(cmd.Context(), store.RunFilter{Node: node, Status: status, Limit: limit, Before: before, After: after})
			if err != nil {
				return err
			}
			if limit > 0 && len(runs) == limit {
				// keyset pages: the next page costs the same at a million runs
				next := fmt.Sprintf("--before %d", runs[0].ID)
				if after > 0 {
					next = fmt.Sprintf("--after %d", runs[len(runs)-1].ID)
				}
				fmt.Fprintf(g.stderr, "more runs: lightsout runs list --limit %d %s\n", limit, next)
			}
			if asJSON {
				out := make([]runJSON, len(runs))
				for i, r := range runs {
					out[i] = toRunJSON(a, r)
				}
				return printJSON(g.stdout, out)
			}
			t := newTable(g.stdout, "ID", "SCRIPT", "NODE", "STATUS", "STARTED", "DURATION", "ERROR")
			for _, r := range runs {
				dur := "-"
				if r.FinishedAt != nil {
					dur = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
				}
				t.row(r.ID, r.Script, orDash(r.NodeName), r.Status, fmtTime(r.StartedAt), dur, firstLine(a.Redactor.String(r.Error)))
			}
			return t.flush()
		}),
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", "", "only runs of this node")
	_ = cmd.RegisterFlagCompletionFunc("node", completeNodes(g))
	f.StringVar(&status, "status", "", "only runs with this status (running, succeeded, failed, timed_out, cancelled, interrupted)")
	f.IntVar(&limit, "limit", 0, "only the last N runs (the first N with --after)")
	f.Int64Var(&before, "before", 0, "only runs with an id below this one (the next older page)")
	f.Int64Var(&after, "after", 0, "only runs with an id above this one (the next newer page)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// runShowJSON is the stable `runs show --json` schema.
type runShowJSON struct {
	runJSON
	ScriptSHA string            `json:"script_sha256"`
	Params    map[string]string `json:"params"`
	Host      string            `json:"host"`
	PID       int               `json:"pid"`
	Events    []eventJSON       `json:"events"`
	Artifacts []store.Artifact  `json:"artifacts"`
}

type eventJSON struct {
	Seq  int64          `json:"seq"`
	Kind string         `json:"kind"`
	Name string         `json:"name"`
	Data map[string]any `json:"data"`
	Time time.Time      `json:"time"`
}

func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usage("run id %q: expected a positive number (see `lightsout runs list`)", s)
	}
	return id, nil
}

func runsShowCmd(g *globals) *cobra.Command {
	var asJSON, follow, console bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "show ID [--follow | --console]",
		Short: "Show a run: header, then the timeline of steps, calls, logs and errors",
		Long: `Show a run: header, then the timeline of steps, calls, logs and errors.
--follow streams the timeline of a running run (from any terminal) until it ends;
the exit status is then the run's: 0 succeeded, 1 anything else.
--console prints the node's serial console output captured while a deploy, clean
or inspect ran (the last 256 KiB, secrets masked).`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRunIDs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			if follow && asJSON {
				return usage("--follow and --json do not go together: follow prints the timeline as text")
			}
			if console && (follow || asJSON) {
				return usage("--console goes alone: it prints the captured console output as text")
			}
			if interval <= 0 || interval > time.Minute {
				return usage("--interval %s: use a duration between 1ms and 1m", interval)
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.Store.GetRun(cmd.Context(), id)
			if err != nil {
				return &app.ValidationError{Err: err}
			}
			if follow {
				return followRun(cmd.Context(), g, a, r, interval)
			}
			if console {
				return printConsole(cmd.Context(), g, a, r)
			}
			evs, err := a.Store.Events(cmd.Context(), id)
			if err != nil {
				return err
			}
			arts, err := a.Store.RunArtifacts(cmd.Context(), id)
			if err != nil {
				return err
			}
			if arts == nil {
				arts = []store.Artifact{}
			}
			if asJSON {
				// Recorded values were redacted when stored; redact again for
				// records of older versions. Artifact locations are stored
				// whole (encrypted when signed) and masked here.
				params, _ := a.Redactor.Value(r.Params).(map[string]string)
				out := runShowJSON{runJSON: toRunJSON(a, r), ScriptSHA: r.ScriptSHA, Params: params, Host: r.Host, PID: r.PID,
					Events: make([]eventJSON, len(evs)), Artifacts: arts}
				for i, e := range evs {
					data, _ := a.Redactor.Value(e.Data).(map[string]any)
					out.Events[i] = eventJSON{Seq: e.Seq, Kind: e.Kind, Name: a.Redactor.String(e.Name), Data: jsonBounded(data), Time: e.Time}
				}
				for i := range arts {
					arts[i].Kind, arts[i].Location = a.Redactor.String(arts[i].Kind), a.Redactor.String(arts[i].Location)
				}
				return printJSON(g.stdout, out)
			}
			return printRun(g, a, r, evs, arts)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the timeline until the run ends; exit with the run's status")
	cmd.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often --follow reads the store")
	cmd.Flags().BoolVar(&console, "console", false, "print the node's serial console output captured during the run")
	return cmd
}

// printConsole prints the console output recorded with run r, or says on
// stderr that none was captured.
func printConsole(ctx context.Context, g *globals, a *app.App, r *store.Run) error {
	out, err := a.RunConsole(ctx, r.ID)
	if err != nil {
		return err
	}
	if out == "" {
		fmt.Fprintf(g.stderr, "run %d (%s on %s) recorded no console output (only deploy, clean and inspect runs on nodes with IPMI access capture it)\n",
			r.ID, r.Script, orDash(r.NodeName))
		return nil
	}
	fmt.Fprint(g.stdout, out)
	if !strings.HasSuffix(out, "\n") {
		fmt.Fprintln(g.stdout)
	}
	return nil
}

// followRun prints the run's header and timeline, then the events recorded
// since, reading the store every interval until the run has ended and its
// last events are printed. A run that did not succeed is a runFailedError.
func followRun(ctx context.Context, g *globals, a *app.App, r *store.Run, interval time.Duration) error {
	w := g.stdout
	fmt.Fprintf(w, "Run %d  %s  on %s  started %s\n", r.ID, r.Script, orDash(r.NodeName), fmtTime(r.StartedAt))
	var last int64
	depth := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		// the status first: events recorded before the run ended are
		// then all in the store when they are read
		cur, err := a.Store.GetRun(ctx, r.ID)
		if err != nil {
			return err
		}
		evs, err := a.Store.Events(ctx, r.ID)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Seq <= last {
				continue
			}
			last = e.Seq
			if e.Kind == store.EventStepEnd && depth > 0 {
				depth--
			}
			fmt.Fprintf(w, "  %8.3fs %s%s\n", e.Time.Sub(r.StartedAt).Seconds(), strings.Repeat("  ", min(depth, 20)),
				a.Redactor.String(describeEvent(e)))
			if e.Kind == store.EventStepStart {
				depth++
			}
		}
		if cur.Status != store.StatusRunning {
			fmt.Fprintf(w, "Run %d %s\n", cur.ID, strings.ToUpper(cur.Status))
			if cur.Status == store.StatusSucceeded {
				return nil
			}
			return &runFailedError{msg: fmt.Sprintf("run %d %s: %s", cur.ID, cur.Status, firstLine(a.Redactor.String(cur.Error)))}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func printRun(g *globals, a *app.App, r *store.Run, evs []store.Event, arts []store.Artifact) error {
	w := g.stdout
	fmt.Fprintf(w, "Run %d  %s  %s\n", r.ID, r.Script, strings.ToUpper(r.Status))
	fmt.Fprintf(w, "  node:     %s\n", orDash(r.NodeName))
	fmt.Fprintf(w, "  script:   %s (sha256 %s)\n", r.Script, short(r.ScriptSHA))
	fmt.Fprintf(w, "  started:  %s on %s (pid %d)\n", fmtTime(r.StartedAt), r.Host, r.PID)
	if r.FinishedAt != nil {
		fmt.Fprintf(w, "  finished: %s (%s)\n", fmtTime(*r.FinishedAt), r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	}
	if len(r.Params) > 0 {
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ps []string
		for _, k := range keys {
			ps = append(ps, a.Redactor.String(k+"="+r.Params[k]))
		}
		fmt.Fprintf(w, "  params:   %s\n", strings.Join(ps, " "))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error:    %s\n", strings.ReplaceAll(a.Redactor.String(r.Error), "\n", "\n            "))
	}
	if len(arts) > 0 {
		fmt.Fprintln(w, "  artifacts:")
		for _, x := range arts {
			del := ""
			if x.DeletedAt != nil {
				del = " (deleted)"
			}
			fmt.Fprintf(w, "    %-8s %s%s\n", a.Redactor.String(x.Kind), a.Redactor.String(x.Location), del)
		}
	}
	fmt.Fprintln(w, "\nTimeline:")
	depth := 0
	for _, e := range evs {
		off := e.Time.Sub(r.StartedAt).Seconds()
		if e.Kind == store.EventStepEnd && depth > 0 {
			depth--
		}
		indent := strings.Repeat("  ", min(depth, 20))
		fmt.Fprintf(w, "  %8.3fs %s%s\n", off, indent, a.Redactor.String(describeEvent(e)))
		if e.Kind == store.EventStepStart {
			depth++
		}
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// describeEvent renders one timeline line.
func describeEvent(e store.Event) string {
	return cutLine(describeEventFull(e))
}

func describeEventFull(e store.Event) string {
	d := boundedMap(e.Data, textDepth, textItems, textString)
	str := func(k string) string {
		if v, ok := d[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	switch e.Kind {
	case store.EventStepStart:
		return "▶ step " + e.Name
	case store.EventStepEnd:
		s := fmt.Sprintf("■ step %s %s (%sms)", e.Name, str("status"), str("duration_ms"))
		if msg := str("error"); msg != "" {
			s += ": " + firstLine(msg)
		}
		return s
	case store.EventCall:
		s := fmt.Sprintf("→ call %s %s (%sms)", e.Name, str("outcome"), str("duration_ms"))
		rest := map[string]any{}
		for k, v := range d {
			if k != "outcome" && k != "duration_ms" && k != "error" {
				rest[k] = v
			}
		}
		if len(rest) > 0 {
			b, _ := json.Marshal(rest)
			s += " " + string(b)
		}
		if msg := str("error"); msg != "" {
			s += ": " + firstLine(msg)
		}
		return s
	case store.EventLog:
		s := fmt.Sprintf("%s %s", strings.ToUpper(e.Name), str("msg"))
		if f, ok := d["fields"]; ok {
			b, _ := json.Marshal(f)
			s += " " + string(b)
		}
		return s
	case store.EventState:
		b, _ := json.Marshal(d)
		return fmt.Sprintf("● %s %s", e.Name, b)
	case app.EventConsole:
		return fmt.Sprintf("▤ console %s bytes captured (see `runs show ID --console`)", str("bytes"))
	}
	b, _ := json.Marshal(d)
	return fmt.Sprintf("%s %s %s", e.Kind, e.Name, b)
}

func runsLogCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "log ID",
		Short:             "Print a run's log and print() output",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRunIDs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			return g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
				if _, err := a.Store.GetRun(cmd.Context(), id); err != nil {
					return &app.ValidationError{Err: err}
				}
				evs, err := a.Store.Events(cmd.Context(), id)
				if err != nil {
					return err
				}
				logs := []eventJSON{}
				for _, e := range evs {
					if e.Kind != store.EventLog {
						continue
					}
					if asJSON {
						logs = append(logs, eventJSON{Seq: e.Seq, Kind: e.Kind, Name: e.Name, Data: jsonBounded(e.Data), Time: e.Time})
						continue
					}
					fmt.Fprintf(g.stdout, "%s %s\n", e.Time.Local().Format("15:04:05.000"), a.Redactor.String(describeEvent(e)))
				}
				if asJSON {
					return printJSON(g.stdout, logs)
				}
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the log events of runs show --json)")
	return cmd
}
