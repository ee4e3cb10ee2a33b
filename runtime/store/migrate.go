package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// copyOrder lists the tables whose rows others reference first; tables
// not listed (added by later migrations) follow in name order.
var copyOrder = []string{"conductors", "nodes", "runs", "events", "artifacts", "jobs", "job_runs"}

// TableSum is the row count and checksum of one table. The checksum is the
// sum (mod 2^256) of the SHA-256 of every row's canonical form (columns in
// name order, each value typed and length-prefixed), computed in Go the
// same way on both stores and independent of row order and collation.
type TableSum struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	Sum   string `json:"sha256_sum"`
}

// Tables returns the tables of the database (the schema bookkeeping table
// aside) in copy order.
func (s *DB) Tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if s.d.name == DialectPostgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
			AND table_type = 'BASE TABLE' AND table_name <> 'lightsout_schema'`
	}
	rows, err := s.r.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", s.where, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list the tables of %s: %w", s.where, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", s.where, err)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, oj := slices.Index(copyOrder, names[i]), slices.Index(copyOrder, names[j])
		if oi < 0 {
			oi = len(copyOrder)
		}
		if oj < 0 {
			oj = len(copyOrder)
		}
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	return names, nil
}

// columns returns the column names of table, sorted.
func (s *DB) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table)+` LIMIT 0`)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s in %s: %w", table, s.where, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s in %s: %w", table, s.where, err)
	}
	sort.Strings(cols)
	return cols, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// scanRows calls fn with each row of table (columns cols), values
// normalised (text as string).
func (s *DB) scanRows(ctx context.Context, table string, cols []string, fn func(vals []any) error) error {
	qc := make([]string, len(cols))
	for i, c := range cols {
		qc[i] = quoteIdent(c)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+strings.Join(qc, ", ")+` FROM `+quoteIdent(table))
	if err != nil {
		return fmt.Errorf("read %s from %s: %w", table, s.where, err)
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s from %s: %w", table, s.where, err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s from %s: %w", table, s.where, err)
	}
	return nil
}

// canonical appends the typed, length-prefixed form of v.
func canonical(b []byte, v any) []byte {
	var tag byte
	var s string
	switch x := v.(type) {
	case nil:
		tag = 'N'
	case int64:
		tag, s = 'I', strconv.FormatInt(x, 10)
	case int:
		tag, s = 'I', strconv.Itoa(x)
	case int32:
		tag, s = 'I', strconv.FormatInt(int64(x), 10)
	case bool:
		tag, s = 'I', "0"
		if x {
			s = "1"
		}
	case float64:
		tag, s = 'F', strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		tag, s = 'S', x
	case time.Time:
		tag, s = 'T', x.UTC().Format(time.RFC3339Nano)
	default:
		tag, s = '?', fmt.Sprint(x)
	}
	b = append(b, tag)
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// Checksums returns the row count and checksum of each table.
func (s *DB) Checksums(ctx context.Context, tables []string) ([]TableSum, error) {
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	var out []TableSum
	for _, t := range tables {
		cols, err := s.columns(ctx, t)
		if err != nil {
			return nil, err
		}
		sum, h := new(big.Int), new(big.Int)
		var n int64
		var buf []byte
		err = s.scanRows(ctx, t, cols, func(vals []any) error {
			buf = buf[:0]
			for i, v := range vals {
				buf = append(buf, cols[i]...)
				buf = append(buf, '=')
				buf = canonical(buf, v)
			}
			d := sha256.Sum256(buf)
			sum.Add(sum, h.SetBytes(d[:]))
			n++
			return nil
		})
		if err != nil {
			return nil, err
		}
		sum.Mod(sum, mod)
		out = append(out, TableSum{Table: t, Rows: n, Sum: hex.EncodeToString(sum.FillBytes(make([]byte, 32)))})
	}
	return out, nil
}

// CopyDatabase copies every row of every table of src into dst (both at
// the same schema version: opening migrates them), in one transaction on
// dst, then verifies that each table has the same row count and checksum
// on both sides. A dst holding rows is refused unless force (its rows are
// then replaced). Stored values are copied as they are: secrets stay
// encrypted, and dst needs the same state dir key (secret.key) as src.
func CopyDatabase(ctx context.Context, src, dst *DB, force bool) ([]TableSum, error) {
	tables, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	dstTables, err := dst.Tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if !slices.Contains(dstTables, t) {
			return nil, fmt.Errorf("copy to %s: it has no table %s (a newer lightsout wrote %s? upgrade lightsout)", dst.where, t, src.where)
		}
	}
	before, err := dst.counts(ctx, dstTables)
	if err != nil {
		return nil, err
	}
	if before != "" && !force {
		return nil, fmt.Errorf("destination %s is not empty (%s): point --to at an empty database, or pass --force to replace its contents", dst.where, before)
	}
	t, err := dst.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.where, err)
	}
	defer t.Rollback()
	for i := len(dstTables) - 1; i >= 0; i-- {
		if _, err := t.ExecContext(ctx, `DELETE FROM `+quoteIdent(dstTables[i])); err != nil {
			return nil, fmt.Errorf("empty %s in %s: %w", dstTables[i], dst.where, err)
		}
	}
	for _, table := range tables {
		if err := copyTable(ctx, src, dst, t, table); err != nil {
			return nil, err
		}
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("copy to %s: %w", dst.where, err)
	}
	want, err := src.Checksums(ctx, tables)
	if err != nil {
		return nil, err
	}
	got, err := dst.Checksums(ctx, tables)
	if err != nil {
		return nil, err
	}
	for i := range want {
		if want[i] != got[i] {
			return got, fmt.Errorf("verify %s: table %s has %d rows (checksum %.12s) in %s but %d rows (checksum %.12s) in the copy",
				dst.where, want[i].Table, want[i].Rows, want[i].Sum, src.where, got[i].Rows, got[i].Sum)
		}
	}
	return want, nil
}

// counts describes the non-empty tables ("3 nodes, 10 runs"), "" if none.
func (s *DB) counts(ctx context.Context, tables []string) (string, error) {
	var parts []string
	for _, t := range tables {
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(t)).Scan(&n); err != nil {
			return "", fmt.Errorf("count %s in %s: %w", t, s.where, err)
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t))
		}
	}
	return strings.Join(parts, ", "), nil
}

// copyTable inserts every row of table from src through t (on dst), in
// multi-row INSERTs.
func copyTable(ctx context.Context, src, dst *DB, t *tx, table string) error {
	cols, err := src.columns(ctx, table)
	if err != nil {
		return err
	}
	dcols, err := dst.columns(ctx, table)
	if err != nil {
		return err
	}
	if !slices.Equal(cols, dcols) {
		return fmt.Errorf("copy %s: its columns differ between %s (%s) and %s (%s)", table, src.where,
			strings.Join(cols, ","), dst.where, strings.Join(dcols, ","))
	}
	qc := make([]string, len(cols))
	for i, c := range cols {
		qc[i] = quoteIdent(c)
	}
	head := `INSERT INTO ` + quoteIdent(table) + ` (` + strings.Join(qc, ", ") + `) VALUES `
	one := `(?` + strings.Repeat(",?", len(cols)-1) + `)`
	batch := max(1, min(500, 30000/len(cols)))
	args := make([]any, 0, batch*len(cols))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := len(args) / len(cols)
		q := head + one + strings.Repeat(","+one, n-1)
		if _, err := t.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("copy %s into %s: %w", table, dst.where, err)
		}
		args = args[:0]
		return nil
	}
	err = src.scanRows(ctx, table, cols, func(vals []any) error {
		args = append(args, vals...)
		if len(args) >= batch*len(cols) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if dst.d.name == DialectPostgres && slices.Contains(cols, "id") {
		// explicit ids do not advance an identity column's sequence
		if _, err := t.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), COALESCE(max(id), 0) + 1, false)
			FROM `+quoteIdent(table)+` WHERE pg_get_serial_sequence(?, 'id') IS NOT NULL`, table, table); err != nil {
			return fmt.Errorf("copy %s into %s: advance its id sequence: %w", table, dst.where, err)
		}
	}
	return nil
}

// Migrate copies the lightsout database at the connection URL from into
// the one at to (see CopyDatabase); both are opened (and migrated to this
// version's schema) and closed. Values are copied without decrypting them.
func Migrate(ctx context.Context, from, to string, force bool) ([]TableSum, error) {
	if kind, path, err := ParseConnection(from); err == nil && kind == DialectSQLite {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--from: %w (nothing to copy; is the path right?)", err)
		}
	}
	src, err := openURL(ctx, from, nil)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := openURL(ctx, to, nil)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()
	if src.d.name == dst.d.name && src.where == dst.where {
		return nil, fmt.Errorf("--from and --to are the same database (%s)", src.where)
	}
	return CopyDatabase(ctx, src, dst, force)
}

// Dump calls fn with every stored row of every table, values as stored
// (secrets encrypted): what an attacker reading the database would see.
func (s *DB) Dump(ctx context.Context, fn func(table string, row []any) error) error {
	tables, err := s.Tables(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		cols, err := s.columns(ctx, t)
		if err != nil {
			return err
		}
		if err := s.scanRows(ctx, t, cols, func(vals []any) error { return fn(t, vals) }); err != nil {
			return err
		}
	}
	return nil
}
