package ipmi

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	gclient "github.com/bougou/go-ipmi/pkg/client"
	gotypes "github.com/bougou/go-ipmi/pkg/types"
)

// Sensor is one sensor of the SDR walk with its reading.
type Sensor struct {
	Number uint8  `json:"number"`
	Name   string `json:"name"`
	Type   string `json:"type"` // e.g. "Temperature", "Fan"
	// Reading is the converted value; Available is false when the sensor
	// gave none (absent, scanning disabled, discrete).
	Reading   float64 `json:"reading"`
	Available bool    `json:"available"`
	Unit      string  `json:"unit"`   // e.g. "degrees C", "RPM", "Watts"
	Status    string  `json:"status"` // ok, lnc, lcr, lnr, unc, ucr, unr, N/A, or discrete state bits
	// Thresholds holds the readable thresholds (lnr, lcr, lnc, unc, ucr, unr).
	Thresholds map[string]float64 `json:"thresholds,omitempty"`
}

// Sensors walks the SDR repository and reads every sensor.
func (c *Client) Sensors(ctx context.Context) ([]Sensor, error) {
	var out []Sensor
	err := c.do(ctx, "sensors", func(ctx context.Context, gc *gclient.Client) error {
		ss, err := gc.GetSensors(ctx)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, s := range ss {
			out = append(out, convertSensor(s))
		}
		return nil
	})
	return out, err
}

func convertSensor(s *gotypes.Sensor) Sensor {
	o := Sensor{Number: s.Number, Name: s.Name, Type: s.SensorType.String(), Unit: s.SensorUnit.String(), Status: s.Status()}
	if s.IsThreshold() && s.IsReadingValid() && !s.NotPresent && !s.ScanningDisabled && !math.IsNaN(s.Value) {
		o.Reading, o.Available = s.Value, true
	}
	if s.IsThreshold() {
		th := map[string]float64{}
		for name, t := range map[string]gotypes.SensorThresholdType{
			"lnr": gotypes.SensorThresholdType_LNR, "lcr": gotypes.SensorThresholdType_LCR, "lnc": gotypes.SensorThresholdType_LNC,
			"unc": gotypes.SensorThresholdType_UNC, "ucr": gotypes.SensorThresholdType_UCR, "unr": gotypes.SensorThresholdType_UNR,
		} {
			if s.IsThresholdReadable(t) {
				th[name] = s.ConvertReading(s.SensorThreshold(t).Raw)
			}
		}
		if len(th) > 0 {
			o.Thresholds = th
		}
	}
	return o
}

// FRU is one FRU device's board and product areas.
type FRU struct {
	ID     uint8  `json:"id"`
	Name   string `json:"name"`
	Board  Area   `json:"board"`
	Prod   Area   `json:"product"`
	Absent bool   `json:"absent,omitempty"`
}

// Area is the common fields of a FRU board or product area.
type Area struct {
	Manufacturer string   `json:"manufacturer,omitempty"`
	Name         string   `json:"name,omitempty"` // board product / product name
	PartNumber   string   `json:"part_number,omitempty"`
	Version      string   `json:"version,omitempty"`
	Serial       string   `json:"serial,omitempty"`
	AssetTag     string   `json:"asset_tag,omitempty"`
	Extra        []string `json:"extra,omitempty"`
}

// FRUs reads FRU 0 and every FRU the SDR repository locates.
func (c *Client) FRUs(ctx context.Context) ([]FRU, error) {
	var out []FRU
	err := c.do(ctx, "fru", func(ctx context.Context, gc *gclient.Client) error {
		fs, err := gc.GetFRUs(ctx)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, f := range fs {
			out = append(out, convertFRU(f))
		}
		return nil
	})
	return out, err
}

func clean(b []byte) string { return strings.TrimRight(strings.TrimSpace(string(b)), "\x00") }

func convertFRU(f *gotypes.FRU) FRU {
	o := FRU{ID: f.DeviceID, Name: f.DeviceName, Absent: f.DeviceNotPresent}
	if b := f.BoardInfoArea; b != nil {
		o.Board = Area{Manufacturer: clean(b.Manufacturer), Name: clean(b.ProductName), PartNumber: clean(b.PartNumber), Serial: clean(b.SerialNumber)}
		for _, x := range b.Custom {
			o.Board.Extra = append(o.Board.Extra, clean(x.Data))
		}
	}
	if p := f.ProductInfoArea; p != nil {
		o.Prod = Area{Manufacturer: clean(p.Manufacturer), Name: clean(p.Name), PartNumber: clean(p.PartModel),
			Version: clean(p.Version), Serial: clean(p.SerialNumber), AssetTag: clean(p.AssetTag)}
	}
	return o
}

// NICCapacity returns the largest NIC capacity ("10Gb") named by the FRUs,
// the way proliantutils derives nic_capacity: a FRU whose Product Name
// mentions a port and an Adapter, and a word of the form <digits>Gb in it.
// It returns "" when no FRU is a NIC.
func NICCapacity(frus []FRU) string {
	best, bestN := "", -1
	for _, f := range frus {
		if c := capacityFromProductName(f.Prod.Name); c != "" {
			if n := gbValue(c); n > bestN {
				best, bestN = c, n
			}
		}
	}
	return best
}

func gbValue(s string) int {
	n := 0
	for _, r := range strings.TrimSuffix(s, "Gb") {
		n = n*10 + int(r-'0')
		if n > 1<<20 {
			return 1 << 20
		}
	}
	return n
}

// capacityFromProductName is proliantutils' _parse_ipmi_nic_capacity on
// one product name: the last word "<digits>Gb" of a name holding "port" and
// "Adapter".
func capacityFromProductName(name string) string {
	if !strings.Contains(name, "port") || !strings.Contains(name, "Adapter") {
		return ""
	}
	capacity := ""
	for _, w := range strings.Split(name, " ") {
		if !strings.Contains(w, "Gb") {
			continue
		}
		d := strings.Trim(w, "Gb")
		if d != "" && strings.Trim(d, "0123456789") == "" {
			capacity = d + "Gb"
		}
	}
	return capacity
}

// NICCapacityFromFRUText applies proliantutils' rule to `ipmitool fru
// print` output: the first "Product Name" line that mentions a port and an
// Adapter and names a capacity. Outputs of absent devices give "".
func NICCapacityFromFRUText(out string) string {
	if strings.Contains(out, "Device not present") && !strings.Contains(out, "Product Name") {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "Product Name" {
			continue
		}
		if c := capacityFromProductName(strings.TrimSpace(v)); c != "" {
			return c
		}
	}
	return ""
}

// SELEntry is one System Event Log record.
type SELEntry struct {
	ID         uint16    `json:"id"`
	RecordType uint8     `json:"record_type"`
	Time       time.Time `json:"time"`
	Generator  uint16    `json:"generator"`
	SensorType string    `json:"sensor_type"`
	SensorNum  uint8     `json:"sensor_number"`
	EventType  uint8     `json:"event_type"`
	Asserted   bool      `json:"asserted"`
	Event      string    `json:"event"`
	Data       [3]byte   `json:"data"`
}

// DecodeSELRecord decodes one 16-byte SEL record (IPMI 2.0 §32). OEM
// records are returned with their type and raw data only.
func DecodeSELRecord(b []byte) (SELEntry, error) {
	if len(b) < 16 {
		return SELEntry{}, fmt.Errorf("SEL record: %d bytes, want 16", len(b))
	}
	e := SELEntry{ID: binary.LittleEndian.Uint16(b[0:2]), RecordType: b[2]}
	if e.RecordType >= 0xe0 { // non-timestamped OEM
		copy(e.Data[:], b[13:16])
		e.Event = fmt.Sprintf("OEM record 0x%02x", e.RecordType)
		return e, nil
	}
	e.Time = time.Unix(int64(binary.LittleEndian.Uint32(b[3:7])), 0).UTC()
	if e.RecordType >= 0xc0 { // timestamped OEM
		copy(e.Data[:], b[13:16])
		e.Event = fmt.Sprintf("OEM record 0x%02x", e.RecordType)
		return e, nil
	}
	e.Generator = binary.LittleEndian.Uint16(b[7:9])
	st := b[10]
	e.SensorType = sensorTypeName(st)
	e.SensorNum = b[11]
	e.Asserted = b[12]&0x80 == 0
	e.EventType = b[12] & 0x7f
	copy(e.Data[:], b[13:16])
	e.Event = eventText(st, e.EventType, e.Data[0]&0x0f)
	return e, nil
}

func sensorTypeName(t uint8) string {
	switch t {
	case 0x01:
		return "Temperature"
	case 0x02:
		return "Voltage"
	case 0x04:
		return "Fan"
	case 0x08:
		return "Power Supply"
	case 0x09:
		return "Power Unit"
	case 0x0c:
		return "Memory"
	case 0x0f:
		return "System Firmware Progress"
	case 0x10:
		return "Event Logging Disabled"
	case 0x12:
		return "System Event"
	case 0x1d:
		return "System Boot Initiated"
	case 0x20:
		return "OS Stop/Shutdown"
	case 0x22:
		return "System ACPI Power State"
	case 0x23:
		return "Watchdog"
	}
	return fmt.Sprintf("0x%02x", t)
}

func eventText(sensorType, eventType, offset uint8) string {
	if eventType == 0x01 {
		names := []string{"Lower Non-critical going low", "Lower Non-critical going high", "Lower Critical going low",
			"Lower Critical going high", "Lower Non-recoverable going low", "Lower Non-recoverable going high",
			"Upper Non-critical going low", "Upper Non-critical going high", "Upper Critical going low",
			"Upper Critical going high", "Upper Non-recoverable going low", "Upper Non-recoverable going high"}
		if int(offset) < len(names) {
			return names[offset]
		}
	}
	if eventType == 0x6f {
		switch sensorType {
		case 0x09:
			if n := []string{"Power off/down", "Power cycle", "240VA power down", "Interlock power down", "AC lost",
				"Soft-power control failure", "Failure detected", "Predictive failure"}; int(offset) < len(n) {
				return n[offset]
			}
		case 0x1d:
			if n := []string{"Initiated by power up", "Initiated by hard reset", "Initiated by warm reset",
				"User requested PXE boot", "Automatic boot to diagnostic", "OS/run-time software initiated hard reset",
				"OS/run-time software initiated warm reset", "System Restart"}; int(offset) < len(n) {
				return n[offset]
			}
		case 0x10:
			if offset == 0x02 {
				return "Log area reset/cleared"
			}
		}
	}
	return fmt.Sprintf("event type 0x%02x offset 0x%02x", eventType, offset)
}

// SEL reads every SEL record.
func (c *Client) SEL(ctx context.Context) ([]SELEntry, error) {
	var out []SELEntry
	err := c.do(ctx, "sel", func(ctx context.Context, gc *gclient.Client) error {
		out = out[:0]
		info, err := gc.GetSELInfo(ctx)
		if err != nil {
			return err
		}
		if info.Entries == 0 {
			return nil
		}
		id := uint16(0)
		for i := 0; i <= int(info.Entries)+1; i++ { // bounded: a BMC cannot loop us
			r, err := gc.GetSELEntry(ctx, 0, id)
			if err != nil {
				return err
			}
			e, err := DecodeSELRecord(r.Data)
			if err != nil {
				return err
			}
			out = append(out, e)
			if r.NextRecordID == 0xffff || r.NextRecordID == id {
				return nil
			}
			id = r.NextRecordID
		}
		return nil
	})
	return out, err
}

// ClearSEL erases the SEL.
func (c *Client) ClearSEL(ctx context.Context) error {
	return c.do(ctx, "clear_sel", func(ctx context.Context, gc *gclient.Client) error {
		r, err := gc.ReserveSEL(ctx)
		if err != nil {
			return err
		}
		_, err = gc.ClearSEL(ctx, r.ReservationID)
		return err
	})
}
