package main

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"time"

	"github.com/lightsout/lightsout/runtime"
)

// summaryAbove is the number of runs above which a verb over many nodes
// prints the summary (counts by result, slowest nodes, errors by kind) in
// place of one row per run (`runs list` has them all).
const summaryAbove = 50

// slowestShown is how many of the slowest nodes the summary lists.
const slowestShown = 5

// variable parts of an error line (addresses, ports, numbers) that do not
// change its kind.
var (
	errAddress = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\[[0-9a-fA-F:]+\](:\d+)?`)
	errNumber  = regexp.MustCompile(`\d+(\.\d+)?`)
)

// errorKind groups error lines that differ only in addresses and numbers.
func errorKind(msg string) string {
	k := errNumber.ReplaceAllString(errAddress.ReplaceAllString(firstLine(msg), "ADDR"), "N")
	return cut(k, 100)
}

// printSummary writes the summary of a run over many nodes: how many runs
// ended in each status, the slowest nodes, and the errors grouped by kind
// (count and one node as an example).
func printSummary(w io.Writer, results []runtime.Result) error {
	byStatus := map[string]int{}
	type kind struct {
		text    string
		count   int
		example string
		runID   int64
	}
	kinds := map[string]*kind{}
	for _, r := range results {
		byStatus[r.Status]++
		if r.Succeeded() {
			continue
		}
		k := errorKind(r.Error)
		if kinds[k] == nil {
			kinds[k] = &kind{text: k, example: r.Node, runID: r.RunID}
		}
		kinds[k].count++
	}
	statuses := make([]string, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	sort.Slice(statuses, func(i, j int) bool {
		if byStatus[statuses[i]] != byStatus[statuses[j]] {
			return byStatus[statuses[i]] > byStatus[statuses[j]]
		}
		return statuses[i] < statuses[j]
	})
	fmt.Fprintf(w, "%d runs\n", len(results))
	t := newTable(w, "RESULT", "RUNS")
	for _, s := range statuses {
		t.row(s, byStatus[s])
	}
	if err := t.flush(); err != nil {
		return err
	}

	slow := make([]runtime.Result, len(results))
	copy(slow, results)
	dur := func(r runtime.Result) time.Duration { return r.FinishedAt.Sub(r.StartedAt) }
	sort.SliceStable(slow, func(i, j int) bool { return dur(slow[i]) > dur(slow[j]) })
	fmt.Fprintf(w, "\nslowest nodes\n")
	t = newTable(w, "NODE", "RUN", "STATUS", "DURATION")
	for _, r := range slow[:min(slowestShown, len(slow))] {
		t.row(orDash(r.Node), r.RunID, r.Status, dur(r).Round(time.Millisecond))
	}
	if err := t.flush(); err != nil {
		return err
	}

	if len(kinds) == 0 {
		return nil
	}
	list := make([]*kind, 0, len(kinds))
	for _, k := range kinds {
		list = append(list, k)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].count != list[j].count {
			return list[i].count > list[j].count
		}
		return list[i].text < list[j].text
	})
	fmt.Fprintf(w, "\nerrors by kind (`lightsout runs show RUN` for one)\n")
	t = newTable(w, "RUNS", "EXAMPLE", "RUN", "ERROR")
	for _, k := range list {
		t.row(k.count, k.example, k.runID, k.text)
	}
	return t.flush()
}
