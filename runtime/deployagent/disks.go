package deployagent

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is one block device as IPA's inventory reports it.
type Disk struct {
	Name               string `json:"name"` // /dev/sda
	Model              string `json:"model"`
	Size               int64  `json:"size"` // bytes
	Rotational         bool   `json:"rotational"`
	WWN                string `json:"wwn"`
	Serial             string `json:"serial"`
	Vendor             string `json:"vendor"`
	WWNWithExtension   string `json:"wwn_with_extension"`
	WWNVendorExtension string `json:"wwn_vendor_extension"`
	HCTL               string `json:"hctl"`
	ByPath             string `json:"by_path"`
	// Path is the device node (or a regular file in tests); it is not
	// part of IPA's serialisation.
	Path string `json:"-"`
	// ReadOnly devices (virtual CD-ROMs, write-protected media) are
	// never cleaned or written.
	ReadOnly bool `json:"-"`
}

// skipped block device name prefixes (IPA ignores the same kinds).
var ignoredDisks = []string{"loop", "ram", "zram", "sr", "fd", "nbd", "dm-", "md", "mtdblock"}

// ListDisks reads the block devices from root/sys/block (root "" is "/").
// Device nodes are root/dev/<name>.
func ListDisks(root string) ([]Disk, error) {
	if root == "" {
		root = "/"
	}
	sysBlock := filepath.Join(root, "sys", "block")
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, err
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if hasAnyPrefix(name, ignoredDisks) {
			continue
		}
		dir := filepath.Join(sysBlock, name)
		sectors, _ := strconv.ParseInt(readSys(dir, "size"), 10, 64)
		if sectors <= 0 {
			continue // empty drive (card reader, ejected media)
		}
		d := Disk{
			Name:       "/dev/" + name,
			Path:       filepath.Join(root, "dev", name),
			Size:       sectors * 512, // sysfs counts 512-byte sectors whatever the logical size
			Rotational: readSys(dir, "queue/rotational") == "1",
			Model:      readSys(dir, "device/model"),
			Vendor:     readSys(dir, "device/vendor"),
			ReadOnly:   readSys(dir, "ro") == "1",
		}
		d.Serial = firstNonEmpty(readSys(dir, "device/serial"), readSys(dir, "serial"), vpdSerial(dir))
		d.WWN, d.WWNWithExtension, d.WWNVendorExtension = wwnOf(firstNonEmpty(readSys(dir, "device/wwid"), readSys(dir, "wwid")))
		if link, err := os.Readlink(filepath.Join(dir, "device")); err == nil && strings.Count(filepath.Base(link), ":") == 3 {
			d.HCTL = filepath.Base(link)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// readSys reads a sysfs attribute, trimmed ("" when absent).
func readSys(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// vpdSerial reads the unit serial number from the SCSI VPD page 0x80.
func vpdSerial(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "device", "vpd_pg80"))
	if err != nil || len(b) < 4 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	if 4+n > len(b) {
		n = len(b) - 4
	}
	return strings.TrimSpace(string(b[4 : 4+n]))
}

// wwnOf turns a sysfs wwid ("naa.5000c500a1b2c3d4", "eui.…", "t10.…")
// into udev's ID_WWN forms: the WWN (0x + 16 hex digits), the WWN with
// its vendor extension, and the extension alone.
func wwnOf(wwid string) (wwn, withExt, ext string) {
	kind, id, ok := strings.Cut(wwid, ".")
	if !ok {
		return "", "", ""
	}
	id = strings.ToLower(strings.TrimSpace(id))
	switch kind {
	case "naa":
		if len(id) > 16 {
			return "0x" + id[:16], "0x" + id, "0x" + id[16:]
		}
		return "0x" + id, "0x" + id, ""
	case "eui":
		return "0x" + id, "0x" + id, ""
	}
	return "", "", ""
}
