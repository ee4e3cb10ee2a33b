package sim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// checkImageURL does what an iLO does when media is inserted: it contacts
// the URL (HEAD, then a one-byte ranged GET when HEAD is refused) and
// refuses URLs that cannot be fetched.
func (s *Sim) checkImageURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("image URL %q: want an http or https URL", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, err := s.fetchStatus(ctx, http.MethodHead, raw)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		status, err = s.fetchStatus(ctx, http.MethodGet, raw)
	}
	if err != nil {
		return fmt.Errorf("image URL unreachable: %w", err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("image URL answered HTTP %d", status)
	}
	return nil
}

func (s *Sim) fetchStatus(ctx context.Context, method, raw string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, raw, nil)
	if err != nil {
		return 0, err
	}
	if method == http.MethodGet {
		req.Header.Set("Range", "bytes=0-0")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, nil
}
