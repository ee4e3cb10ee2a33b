//go:build !linux

package deployagent

func nvmeSecureFormat(string) error { return errNVMeFormatUnsupported }
