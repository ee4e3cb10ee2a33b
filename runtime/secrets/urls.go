package secrets

import (
	"regexp"
	"strings"
)

// signatureParams are URL query parameters that carry a signature or a
// credential although IsSecretKey does not match their name: Swift and our
// web store's temp URLs (temp_url_sig), S3 and GCS presigned URLs.
var signatureParams = map[string]bool{
	"temp_url_sig": true, "sig": true, "signature": true,
	"x-amz-signature": true, "x-amz-credential": true,
	"x-goog-signature": true, "x-goog-credential": true,
}

// IsSecretParam reports whether a URL query parameter name carries a
// credential: a signature parameter, or a name IsSecretKey matches
// (agent_token, password, ...).
func IsSecretParam(name string) bool {
	return signatureParams[strings.ToLower(name)] || IsSecretKey(name)
}

var (
	// userinfoRE matches "scheme://userinfo@" up to the last '@' of the
	// authority, as net/url does (a raw '@' in a password stays masked).
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\s"'<>]*)@`)
	// queryParamRE matches "?name=value" or "&name=value".
	queryParamRE = regexp.MustCompile(`([?&;])([A-Za-z0-9_.\-]+)=([^&;#\s"'<>]*)`)
)

// MaskURLs masks the credentials of every URL in s: the password of a
// userinfo ("http://user:pw@host" becomes "http://user:******@host"; a
// userinfo without a colon, often a token, is masked whole) and the value
// of every secret query parameter (temp_url_sig=******, agent_token=******).
// The rest of the URL stays readable.
func MaskURLs(s string) string {
	if strings.Contains(s, "@") && strings.Contains(s, "://") {
		s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := userinfoRE.FindStringSubmatch(m)
			scheme, ui := sub[1], sub[2]
			if ui == "" {
				return m
			}
			if user, pw, ok := strings.Cut(ui, ":"); ok {
				if pw == "" || pw == Mask {
					return m
				}
				return scheme + user + ":" + Mask + "@"
			}
			return scheme + Mask + "@"
		})
	}
	if strings.Contains(s, "=") {
		s = queryParamRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := queryParamRE.FindStringSubmatch(m)
			if sub[3] == "" || sub[3] == Mask || !IsSecretParam(sub[2]) {
				return m
			}
			return sub[1] + sub[2] + "=" + Mask
		})
	}
	return s
}
