//go:build linux

package deployagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ConfigureNetwork brings lo and every physical NIC up, waits for link,
// then applies the static ip= address or runs DHCP on every NIC with link
// in parallel. It succeeds when at least one NIC got an address.
func ConfigureNetwork(ctx context.Context, p Params, o NetworkOptions) error {
	if o.CarrierWait <= 0 {
		o.CarrierWait = 15 * time.Second
	}
	if o.DHCPTimeout <= 0 {
		o.DHCPTimeout = 60 * time.Second
	}
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// DHCP transaction ids come from u-root's rand, which waits for the
	// kernel's crng; early in a VM's boot without a hardware RNG that can
	// take minutes. Transaction ids need no cryptographic quality: let it
	// read /dev/urandom.
	if os.Getenv("UROOT_NOHWRNG") == "" {
		_ = os.Setenv("UROOT_NOHWRNG", "1")
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			log.Warn("bringing lo up failed", "err", err)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("listing network interfaces: %w", err)
	}
	var nics []netlink.Link
	for _, l := range links {
		name := l.Attrs().Name
		if _, err := os.Stat(filepath.Join("/sys/class/net", name, "device")); err != nil {
			continue // lo and virtual links
		}
		if err := netlink.LinkSetUp(l); err != nil {
			log.Warn("bringing interface up failed", "iface", name, "err", err)
			continue
		}
		nics = append(nics, l)
	}
	if len(nics) == 0 {
		return errors.New("no network interface found: the ramdisk may lack the NIC's driver module (virtio_net, e1000, tg3, bnx2x, i40e, ice, mlx5)")
	}
	log.Info("network interfaces up", "count", len(nics))
	up := waitCarrier(ctx, nics, o.CarrierWait)
	if len(up) == 0 {
		return fmt.Errorf("no network interface has link after %s (%d interfaces)", o.CarrierWait, len(nics))
	}
	for _, l := range up {
		log.Info("link detected", "iface", l.Attrs().Name, "mac", l.Attrs().HardwareAddr.String())
	}
	if st := p.Static; st != nil {
		return configureStatic(st, pickStaticNIC(up, st.Device, p.BootIF), o.ResolvConf, log)
	}
	return dhcpAll(ctx, up, o, log)
}

// waitCarrier returns the links that have carrier within d (polling
// sysfs; the kernel sets carrier asynchronously after link up).
func waitCarrier(ctx context.Context, nics []netlink.Link, d time.Duration) []netlink.Link {
	deadline := time.Now().Add(d)
	for {
		var up []netlink.Link
		for _, l := range nics {
			if readSys(filepath.Join("/sys/class/net", l.Attrs().Name), "carrier") == "1" {
				up = append(up, l)
			}
		}
		if len(up) == len(nics) || time.Now().After(deadline) {
			return up
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return up
		}
	}
}

func pickStaticNIC(up []netlink.Link, dev, bootif string) netlink.Link {
	for _, l := range up {
		if dev != "" && l.Attrs().Name == dev {
			return l
		}
	}
	for _, l := range up {
		if bootif != "" && strings.EqualFold(l.Attrs().HardwareAddr.String(), bootif) {
			return l
		}
	}
	return up[0]
}

func configureStatic(st *StaticIP, l netlink.Link, resolv string, log *slog.Logger) error {
	name := l.Attrs().Name
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: st.Address, Mask: st.Mask}}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("ip=: setting %s on %s: %w", addr.IPNet, name, err)
	}
	if st.Gateway != nil {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: st.Gateway}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("ip=: default route via %s on %s: %w", st.Gateway, name, err)
		}
	}
	if st.Hostname != "" {
		_ = unix.Sethostname([]byte(st.Hostname))
	}
	writeResolvConf(resolv, st.DNS)
	log.Info("static address configured", "iface", name, "address", addr.IPNet.String(), "gateway", st.Gateway)
	return nil
}

// dhcpAll runs DHCP on every link in parallel and applies each lease.
func dhcpAll(ctx context.Context, up []netlink.Link, o NetworkOptions, log *slog.Logger) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		errs []error
		dns  []net.IP
	)
	for _, l := range up {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := l.Attrs().Name
			ips, err := dhcpOne(ctx, l, o.DHCPTimeout, log)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				log.Warn("DHCP failed", "iface", name, "err", err)
				return
			}
			ok++
			dns = append(dns, ips...)
			log.Info("DHCP lease applied", "iface", name, "dns", fmt.Sprint(ips))
		}()
	}
	wg.Wait()
	if ok == 0 {
		return fmt.Errorf("DHCP failed on every interface: %w", errors.Join(errs...))
	}
	writeResolvConf(o.ResolvConf, dns)
	return nil
}

func dhcpOne(ctx context.Context, l netlink.Link, timeout time.Duration, log *slog.Logger) ([]net.IP, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := nclient4.New(l.Attrs().Name, nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var lease *nclient4.Lease
	for {
		lease, err = c.Request(ctx)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ack := lease.ACK
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ack.YourIPAddr, Mask: mask}}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return nil, fmt.Errorf("setting %s: %w", addr.IPNet, err)
	}
	log.Info("DHCP address", "iface", l.Attrs().Name, "address", addr.IPNet.String(), "router", fmt.Sprint(ack.Router()))
	if gws := ack.Router(); len(gws) > 0 {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gws[0], Priority: 100 + l.Attrs().Index}
		if err := netlink.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("default route via %s: %w", gws[0], err)
		}
	}
	return ack.DNS(), nil
}

func writeResolvConf(path string, dns []net.IP) {
	if len(dns) == 0 {
		return
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, ip := range dns {
		if s := ip.String(); !seen[s] {
			seen[s] = true
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
	}
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
}
