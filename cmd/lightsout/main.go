// Command lightsout inspects, cleans and deploys HPE ProLiant servers through
// their iLO. The commands are thin: logic lives in runtime/ and bindings/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/secrets"
)

// Exit codes.
const (
	exitOK        = 0
	exitRunFailed = 1
	exitUsage     = 2
)

// globals holds the persistent flags.
type globals struct {
	configPath string
	scriptDirs []string
	stateDir   string
	logLevel   string
	logFormat  string
	stdout     io.Writer
	stderr     io.Writer
	// logOut is the log writer on a terminal (log lines go above a live
	// view); nil off a terminal.
	logOut *logMux
}

// open opens the app with the global flags.
func (g *globals) open(ctx context.Context) (*app.App, error) {
	return app.Open(ctx, app.Options{ConfigPath: g.configPath, ScriptDirs: g.scriptDirs, StateDir: g.stateDir,
		LogLevel: g.logLevel, LogFormat: g.resolvedLogFormat(), Stdout: g.stdout, Stderr: g.logWriter()})
}

// logWriter is where logs go: stderr, through a logMux on a terminal.
func (g *globals) logWriter() io.Writer {
	if !isTerminal(g.stderr) {
		return g.stderr
	}
	if g.logOut == nil {
		g.logOut = &logMux{w: g.stderr}
	}
	return g.logOut
}

// resolvedLogFormat is --log-format with "auto" decided: compact (in
// colour when the terminal supports it and NO_COLOR is unset) when stderr
// is a terminal, else text.
func (g *globals) resolvedLogFormat() string {
	f := strings.ToLower(g.logFormat)
	if f == "auto" || f == "" {
		if !isTerminal(g.stderr) {
			return "text"
		}
		f = "compact"
	}
	if f == "compact" && isTerminal(g.stderr) && colorAllowed() {
		return "compact-color"
	}
	return f
}

// runFailedError makes the process exit 1 after output was printed.
type runFailedError struct{ msg string }

func (e *runFailedError) Error() string { return e.msg }

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "lightsout",
		Short: "Inspect, clean and deploy HPE ProLiant servers through their iLO",
		Long: `lightsout drives HPE ProLiant servers through iLO 4 (RIBCL) and iLO 5/6/7 (Redfish):
it builds boot media, publishes it, attaches it as iLO virtual media and runs the
deploy, clean and inspect procedures as editable Lua scripts, recording every run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "config file (default $LIGHTSOUT_CONFIG or /etc/lightsout/lightsout.conf)")
	pf.StringArrayVar(&g.scriptDirs, "scripts", nil, "site script directory searched before the bundled scripts (repeatable)")
	pf.StringVar(&g.stateDir, "state-dir", "", "state directory (overrides [lightsout] state_dir)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: auto (compact on a terminal, else text), compact, text or json")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"auto", "compact", "text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddCommand(newNodeCmd(g), newRunCmd(g), newRunsCmd(g), newScriptsCmd(g), newConfigCmd(g))
	root.AddCommand(verbCommands(g)...)
	for _, c := range extraCommands(g) {
		root.AddCommand(c)
	}
	// `completion bash|zsh|fish|powershell` now, not at Execute, so that
	// commandError finds it (it takes its writer now: set it first)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.InitDefaultCompletionCmd()
	typeUsageErrors(root)
	return root
}

// typeUsageErrors makes every command-line error cobra detects a
// *usageError (exit status 2), so the exit code never depends on the words
// of cobra's messages: flag parse errors through FlagErrorFunc; argument
// count, unknown commands, required flags and flag groups through an Args
// validator that runs before cobra's own checks.
func typeUsageErrors(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	for _, sub := range c.Commands() {
		typeUsageErrors(sub)
	}
	if !c.HasParent() {
		// the root keeps cobra's default: unknown commands are found by
		// Find before any validator runs (see commandError)
		return
	}
	orig := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		var err error
		if orig != nil {
			err = orig(cmd, args)
		}
		if err == nil {
			err = cmd.ValidateRequiredFlags()
		}
		if err == nil {
			err = cmd.ValidateFlagGroups()
		}
		if err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// commandError returns the error cobra's Find gives for args (an unknown
// command) as a *usageError, or nil.
func commandError(root *cobra.Command, args []string) error {
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return nil // shell completion requests: cobra adds the command at Execute
	}
	cmd, rest, err := root.Find(args)
	if err != nil {
		return &usageError{err}
	}
	// a group such as `node` given an unknown subcommand: cobra would print
	// its help and succeed
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		if pos := positional(cmd, rest); len(pos) > 0 {
			return &usageError{fmt.Errorf("unknown command %q for %q (see `%s --help`)", pos[0], cmd.CommandPath(), cmd.CommandPath())}
		}
	}
	return nil
}

// positional returns the arguments of cmd that are neither flags nor flag
// values (without parsing: cobra parses them once, later).
func positional(cmd *cobra.Command, args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "--") && !strings.Contains(a, "="):
			if f := cmd.Flags().Lookup(a[2:]); f != nil && f.NoOptDefVal == "" {
				i++ // the flag's value
			}
		case strings.HasPrefix(a, "-") && len(a) == 2:
			if f := cmd.Flags().ShorthandLookup(a[1:]); f != nil && f.NoOptDefVal == "" {
				i++
			}
		case strings.HasPrefix(a, "-"):
		default:
			out = append(out, a)
		}
	}
	return out
}

func main() {
	if isRamdiskInit(os.Getpid(), os.Args) {
		// the ramdisk's /init is this binary: run the deploy agent's init
		// whatever the arguments (it never returns)
		deployagent.Init()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// isRamdiskInit reports whether the process is the ramdisk's init: PID 1
// started as /init (or rdinit=/init, init=…/init). PID 1 under any other
// name, e.g. `lightsout serve` as a container's entry point, is the CLI.
func isRamdiskInit(pid int, argv []string) bool {
	if pid != 1 || len(argv) == 0 {
		return false
	}
	base := argv[0]
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return base == "init" || os.Getenv("LIGHTSOUT_INIT") == "1"
}

// run executes the CLI and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := interruptible(stderr)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := commandError(root, args)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return exitOK
	}
	var rf *runFailedError
	if errors.As(err, &rf) {
		if rf.msg != "" {
			fmt.Fprintln(stderr, "lightsout:", secrets.MaskURLs(rf.msg))
		}
		return exitRunFailed
	}
	// Errors naming a URL never show its credentials.
	fmt.Fprintln(stderr, "lightsout:", secrets.MaskURLs(err.Error()))
	var ue *runtime.UsageError
	var ve *app.ValidationError
	var ce *app.ConfigError
	var cfe *configErr
	var u *usageError
	if errors.As(err, &ue) || errors.As(err, &ve) || errors.As(err, &ce) || errors.As(err, &cfe) || errors.As(err, &u) {
		return exitUsage
	}
	return exitRunFailed
}

// interruptible returns a context cancelled by the first SIGINT or SIGTERM
// (its cause names the signal): runs then go through their playbook's
// failure path, bounded by [lightsout] abort_grace. A second signal exits
// at once (status 130); the next command recovers the node.
func interruptible(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(stderr, "lightsout: %s: stopping, running the failure path (signal again to exit at once)\n", sig)
			cancel(fmt.Errorf("signal %s", sig))
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			fmt.Fprintf(stderr, "lightsout: %s again: exiting now; `lightsout node recover NODE` finishes the cleanup\n", sig)
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(ch); close(done); cancel(nil) }
}

// usageError marks a bad command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *usageError) Unwrap() error { return e.err }

// usage wraps a message as a usage error.
func usage(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// withApp adapts a command body that needs the opened app: it opens it with
// the global flags, runs fn and closes it.
func (g *globals) withApp(fn func(cmd *cobra.Command, args []string, a *app.App) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := g.open(cmd.Context())
		if err != nil {
			return err
		}
		defer a.Close()
		return fn(cmd, args, a)
	}
}
