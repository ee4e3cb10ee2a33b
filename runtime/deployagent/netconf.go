package deployagent

import (
	"log/slog"
	"time"
)

// NetworkOptions tunes ConfigureNetwork.
type NetworkOptions struct {
	// CarrierWait bounds the wait for link on the NICs (default 15 s).
	CarrierWait time.Duration
	// DHCPTimeout bounds DHCP on each NIC (default 60 s).
	DHCPTimeout time.Duration
	// ResolvConf is where DNS servers are written (default /etc/resolv.conf).
	ResolvConf string
	Logger     *slog.Logger
}
