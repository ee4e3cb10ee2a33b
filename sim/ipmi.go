package sim

// The IPMI face of a simulated server: IPMI v2.0 RMCP+ (lanplus, cipher
// suites 3 and 17) on its own UDP port on 127.0.0.1, sharing the server's
// state with its RIBCL and Redfish faces (power, boot device), with sensors
// that follow power (temperatures, fans, power meter), FRU data including the
// NIC adapter (as proliantutils reads it), and SEL entries for power events.
//
// The RMCP+ session layer and the standard chassis/storage handlers are
// github.com/bougou/go-ipmi's reference BMC; this file supplies the hardware
// (a HAL over [Server]) and the sensor and SEL commands it lacks.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
)

// ipmiFace is one server's IPMI endpoint.
type ipmiFace struct {
	srv  *Server
	conn *udp.Conn
	bmc  *server.Server
	port int
	done chan struct{}

	mu        sync.Mutex
	sel       []selRecord
	nextSEL   uint16
	selErased time.Time
	lastPower string // power state last seen (SEL entries for changes)
	lastBoots int    // boot count last seen (resets while on)
	persist   bool   // the last IPMI boot override asked for every boot
	reserve   uint16 // current SEL reservation
	console   *simConsole
}

type selRecord struct {
	id   uint16
	data [16]byte
}

// IPMI sensor numbers of a simulated server.
const (
	ipmiSensorInlet = 1
	ipmiSensorCPU   = 2
	ipmiSensorPower = 3
	ipmiSensorFan0  = 0x10 // fans 0x10, 0x11, ...
	ipmiSensorPwrU  = 0x40 // Power Unit (SEL only)
	ipmiSensorBoot  = 0x41 // System Boot Initiated (SEL only)
	ipmiSensorLog   = 0x42 // Event Logging Disabled (SEL only)
	ipmiNICFRUBase  = 0x10 // FRU IDs of NIC adapters
)

// IPMIPort is the UDP port of the server's IPMI (lanplus) face on 127.0.0.1,
// 0 when it has none.
func (s *Server) IPMIPort() int {
	if s.ipmi == nil {
		return 0
	}
	return s.ipmi.port
}

// startIPMI starts the IPMI face of srv on 127.0.0.1 (an ephemeral port).
func (s *Sim) startIPMI(srv *Server) error {
	// The port of an earlier start (StateDir) if it is free, else a new one.
	conn, err := udp.Listen(fmt.Sprintf("127.0.0.1:%d", srv.State().IPMIPort), udp.WithReadTimeout(time.Second))
	if err != nil {
		conn, err = udp.Listen("127.0.0.1:0", udp.WithReadTimeout(time.Second))
	}
	if err != nil {
		return fmt.Errorf("sim: %s: IPMI listener: %w", srv.name, err)
	}
	if p := conn.LocalAddr().(*net.UDPAddr).Port; srv.State().IPMIPort != p {
		srv.Update(func(st *State) { st.IPMIPort = p })
	}
	f := &ipmiFace{srv: srv, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, done: make(chan struct{}),
		console: &simConsole{name: srv.name}}
	f.console.poll = func() { f.sync() }
	st := srv.State()
	f.lastPower, f.lastBoots = st.Power, st.BootCount

	h := &ipmiHAL{face: f, storage: &mock.Storage{}}
	if err := f.seedStorage(h.storage); err != nil {
		conn.Close()
		return err
	}
	info := bmc.DeviceInfo{DeviceID: 0x13, DeviceRevision: 1, FirmwareMajor: 2, FirmwareMinor: 0x55,
		IPMIVersion: 0x02 /* BCD: minor in 7:4, major in 3:0 */, ManufacturerID: 0x00000b /* HPE */, ProductID: 0x2000,
		AdditionalDeviceSupport: 0x8f /* chassis, FRU, SEL, SDR repository, sensors */}
	var guid [16]byte
	sum := sha256.Sum256([]byte("lightsout-sim-ipmi/" + srv.name))
	copy(guid[:], sum[:16])
	b := bmc.New(info, guid, h)
	for i, u := range srv.State().Users {
		if i >= 14 || len(u.Login) > 16 {
			continue
		}
		user, err := b.Users.Add(uint8(i+2), u.Login)
		if err != nil {
			continue
		}
		user.SetPassword([]byte(u.Password))
		user.Enabled = true
		user.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
	}
	reg := handlers.NewRegistry()
	handlers.RegisterAllHandlers(reg)
	f.register(reg)
	f.bmc = server.NewServer(b, conn, server.WithHandlerRegistry(reg),
		server.WithCipherSuites([]types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17}))
	srv.ipmi = f
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		defer close(f.done)
		_ = f.bmc.Serve(s.baseCtx)
	}()
	return nil
}

// close stops the IPMI face.
func (f *ipmiFace) close() {
	if f == nil {
		return
	}
	_ = f.bmc.Close()
}

// sync turns power changes seen since the last call into SEL entries
// (state changes made through RIBCL or Redfish show up too).
func (f *ipmiFace) sync() State {
	st := f.srv.State()
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	switch {
	case st.Power != f.lastPower && st.Power == "ON":
		f.addSELLocked(now, 0x1d, ipmiSensorBoot, 0x6f, 0x00) // System Boot Initiated: power up
		f.addSELLocked(now, 0x09, ipmiSensorPwrU, 0xef, 0x00) // Power Unit: power off/down deasserted
		f.bannerLocked(st)
	case st.Power != f.lastPower:
		f.addSELLocked(now, 0x09, ipmiSensorPwrU, 0x6f, 0x00) // Power Unit: power off/down
	case st.Power == "ON" && st.BootCount != f.lastBoots:
		f.addSELLocked(now, 0x1d, ipmiSensorBoot, 0x6f, 0x01) // System Boot Initiated: hard reset
		f.bannerLocked(st)
	}
	f.lastPower, f.lastBoots = st.Power, st.BootCount
	return st
}

// bannerLocked prints the POST banner of a boot on the serial console.
func (f *ipmiFace) bannerLocked(st State) {
	hw := f.srv.Hardware()
	f.console.print([]byte(fmt.Sprintf("\r\n%s System ROM - %s boot mode\r\nBoot count %d\r\n",
		hw.Model, st.BootMode, st.BootCount)))
}

const selCapacity = 512

func (f *ipmiFace) addSELLocked(at time.Time, sensorType, sensorNum, dirType, offset uint8) {
	f.nextSEL++
	if f.nextSEL == 0 || f.nextSEL == 0xffff {
		f.nextSEL = 1
	}
	var r selRecord
	r.id = f.nextSEL
	binary.LittleEndian.PutUint16(r.data[0:2], r.id)
	r.data[2] = 0x02 // system event record
	binary.LittleEndian.PutUint32(r.data[3:7], uint32(at.Unix()))
	r.data[7], r.data[8] = 0x20, 0x00 // generator: BMC
	r.data[9] = 0x04                  // EvM rev (IPMI 2.0)
	r.data[10], r.data[11], r.data[12] = sensorType, sensorNum, dirType
	r.data[13], r.data[14], r.data[15] = offset, 0xff, 0xff
	if len(f.sel) >= selCapacity {
		f.sel = f.sel[1:]
	}
	f.sel = append(f.sel, r)
}

// sensorValue is a sensor's reading in its unit for the current state.
type simSensor struct {
	num        uint8
	name       string
	stype      uint8 // IPMI sensor type
	unit       uint8 // IPMI base unit: 1 degrees C, 18 RPM, 6 Watts
	m          uint16
	value      func(on bool, boots int) float64
	thresholds [6]uint8 // raw LNC, LC, LNR, UNC, UC, UNR; 0 = not readable
}

func (f *ipmiFace) sensors() []simSensor {
	hw := f.srv.Hardware()
	ss := []simSensor{
		{num: ipmiSensorInlet, name: "01-Inlet Ambient", stype: 0x01, unit: 1, m: 1,
			value: func(on bool, _ int) float64 {
				if on {
					return 24
				}
				return 21
			}, thresholds: [6]uint8{0, 0, 0, 38, 42, 46}},
		{num: ipmiSensorCPU, name: "02-CPU 1", stype: 0x01, unit: 1, m: 1,
			value: func(on bool, boots int) float64 {
				if on {
					return float64(40 + boots%5)
				}
				return 21
			}, thresholds: [6]uint8{0, 0, 0, 0, 70, 75}},
		{num: ipmiSensorPower, name: "Power Meter", stype: 0x0b, unit: 6, m: 2,
			value: func(on bool, _ int) float64 {
				if on {
					w := hw.PowerWatts
					if w <= 0 {
						w = 180
					}
					return float64(w)
				}
				return 8
			}},
	}
	fans := hw.Fans
	if fans > 16 {
		fans = 16
	}
	for i := 0; i < fans; i++ {
		ss = append(ss, simSensor{num: ipmiSensorFan0 + uint8(i), name: fmt.Sprintf("Fan %d", i+1), stype: 0x04, unit: 18, m: 50,
			value: func(on bool, _ int) float64 {
				if on {
					return 3600 + float64(i)*50
				}
				return 0
			}})
	}
	return ss
}

// fullSensorSDR packs an SDR type 01h (full sensor record) for s.
func fullSensorSDR(id uint16, s simSensor) []byte {
	name := s.name
	if len(name) > 16 {
		name = name[:16]
	}
	b := make([]byte, 48, 48+len(name))
	binary.LittleEndian.PutUint16(b[0:2], id)
	b[2], b[3] = 0x51, 0x01
	b[5], b[6], b[7] = 0x20, 0x00, s.num // owner BMC, LUN 0, sensor number
	b[8], b[9] = 0x07, 0x01              // entity: system board (processor for CPU below), instance 1
	if s.stype == 0x04 {
		b[8] = 0x1d // fan/cooling device
	}
	b[10] = 0x7f // init: scanning, events, thresholds, hysteresis, type
	b[11] = 0x40 // auto re-arm, no hysteresis, no threshold access, per-threshold events
	var readable uint8
	for i, t := range s.thresholds {
		if t != 0 {
			readable |= 1 << bitForThreshold(i)
		}
	}
	if readable != 0 {
		b[11] |= 0x04 // thresholds readable per reading mask
	}
	b[12], b[13] = s.stype, 0x01 // threshold event/reading type
	b[18] = readable             // readable threshold mask
	b[20] = 0x00                 // unsigned, no rate, no modifier
	b[21] = s.unit
	b[23] = 0x00 // linear
	b[24] = uint8(s.m)
	b[25] = uint8(s.m>>8) & 0x03
	b[29] = 0x00 // R exp 0, B exp 0
	b[33], b[34] = 0xff, 0x00
	// thresholds: UNR, UC, UNC, LNR, LC, LNC at bytes 36..41 (spec 37..42)
	b[36], b[37], b[38] = s.thresholds[5], s.thresholds[4], s.thresholds[3]
	b[39], b[40], b[41] = s.thresholds[2], s.thresholds[1], s.thresholds[0]
	b[47] = 0xc0 | uint8(len(name))
	b = append(b, name...)
	b[4] = uint8(len(b) - 5)
	return b
}

// bitForThreshold maps thresholds index (LNC, LC, LNR, UNC, UC, UNR) to the
// bit of the reading mask (LNC 0, LC 1, LNR 2, UNC 3, UC 4, UNR 5).
func bitForThreshold(i int) uint { return uint(i) }

// nicAdapterName is the FRU product name of the server's NIC adapter, in
// the shape proliantutils parses ("HP Ethernet 1Gb 4-port 331FLR Adapter").
func nicAdapterName(hw Hardware) (string, bool) {
	if len(hw.NICs) == 0 {
		return "", false
	}
	speed := 0
	for _, n := range hw.NICs {
		speed = max(speed, n.SpeedGb)
	}
	if speed <= 0 {
		speed = 1
	}
	model := "331FLR"
	if speed >= 10 {
		model = "530FLR-SFP+"
	}
	return fmt.Sprintf("HP Ethernet %dGb %d-port %s Adapter", speed, len(hw.NICs), model), true
}

// seedStorage writes the FRUs (0: the server, 0x10: its NIC adapter) and the
// SDR repository (sensors, FRU locators).
func (f *ipmiFace) seedStorage(st *mock.Storage) error {
	ctx := context.Background()
	hw := f.srv.Hardware()
	sys, err := types.PackFRU(types.FRUPackConfig{
		Chassis: &types.FRUPackChassis{Type: 0x17, Serial: hw.SerialNumber},
		Board:   &types.FRUPackBoard{Mfg: "HPE", Product: hw.Model, Serial: hw.SerialNumber, PartNumber: "P00000-B21"},
		Product: &types.FRUPackProduct{Manufacturer: "HPE", Name: hw.Model, PartModel: "P00000-B21", Serial: hw.SerialNumber},
	})
	if err != nil {
		return fmt.Errorf("sim: %s: pack FRU 0: %w", f.srv.name, err)
	}
	if err := st.FRU().Write(ctx, 0, sys); err != nil {
		return err
	}
	id := uint16(1)
	for _, s := range f.sensors() {
		if err := st.SDR().Write(ctx, id, fullSensorSDR(id, s)); err != nil {
			return err
		}
		id++
	}
	if name, ok := nicAdapterName(hw); ok {
		serial := "CN" + strings.ToUpper(fmt.Sprintf("%x", sha256.Sum256([]byte(hw.SerialNumber))))[:8]
		nic, err := types.PackFRU(types.FRUPackConfig{
			Board:   &types.FRUPackBoard{Mfg: "HP", Product: name, Serial: serial, PartNumber: "634025-001"},
			Product: &types.FRUPackProduct{Manufacturer: "HP", Name: name, PartModel: "629135-B21", Version: "00", Serial: serial},
		})
		if err != nil {
			return fmt.Errorf("sim: %s: pack NIC FRU: %w", f.srv.name, err)
		}
		if err := st.FRU().Write(ctx, ipmiNICFRUBase, nic); err != nil {
			return err
		}
		loc := &types.SDRFRUDeviceLocator{DeviceAccessAddress: 0x20, FRUDeviceID_SlaveAddress: ipmiNICFRUBase,
			IsLogicalFRUDevice: true, DeviceType: 0x10, FRUEntityID: 0x0b /* add-in card */, FRUEntityInstance: 1,
			DeviceIDBytes: []byte("NIC 1")}
		if err := st.SDR().Write(ctx, id, loc.Pack(id)); err != nil {
			return err
		}
	}
	return nil
}

// register adds the sensor and SEL commands to reg.
func (f *ipmiFace) register(reg *handlers.Registry) {
	reg.RegisterFunc(types.CommandGetSensorReading, f.handleGetSensorReading)
	reg.RegisterFunc(types.CommandGetSensorThresholds, f.handleGetSensorThresholds)
	reg.RegisterFunc(types.CommandGetSELInfo, f.handleGetSELInfo)
	reg.RegisterFunc(types.CommandGetSELAllocInfo, f.handleGetSELAllocInfo)
	reg.RegisterFunc(types.CommandReserveSEL, f.handleReserveSEL)
	reg.RegisterFunc(types.CommandGetSELEntry, f.handleGetSELEntry)
	reg.RegisterFunc(types.CommandClearSEL, f.handleClearSEL)
	reg.RegisterFunc(types.CommandGetSELTime, f.handleGetSELTime)
	// Get Chassis Status syncs the SEL too (power changes made elsewhere).
	reg.RegisterFunc(types.CommandGetChassisStatus, f.handleGetChassisStatus)
}

func (f *ipmiFace) sensorByNumber(n uint8) (simSensor, bool) {
	for _, s := range f.sensors() {
		if s.num == n {
			return s, true
		}
	}
	return simSensor{}, false
}

func rawOf(s simSensor, v float64) uint8 {
	r := v / float64(s.m)
	switch {
	case r < 0:
		return 0
	case r > 255:
		return 255
	}
	return uint8(r + 0.5)
}

// ipmiRequestByte returns req[i] or false when the request is too short.
func ipmiRequestByte(req []byte, i int) (byte, bool) {
	if i < 0 || i >= len(req) {
		return 0, false
	}
	return req[i], true
}

func (f *ipmiFace) handleGetSensorReading(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	n, ok := ipmiRequestByte(req, 0)
	if !ok {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	s, ok := f.sensorByNumber(n)
	if !ok {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	st := f.sync()
	raw := rawOf(s, s.value(st.Power == "ON", st.BootCount))
	var status uint8
	for i, t := range s.thresholds {
		if t == 0 {
			continue
		}
		if (i < 3 && raw <= t) || (i >= 3 && raw >= t) {
			status |= 1 << bitForThreshold(i)
		}
	}
	return []byte{raw, 0xc0, status, 0x80}, types.CodeOK, nil
}

func (f *ipmiFace) handleGetSensorThresholds(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	n, ok := ipmiRequestByte(req, 0)
	if !ok {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	s, ok := f.sensorByNumber(n)
	if !ok {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	var mask uint8
	for i, t := range s.thresholds {
		if t != 0 {
			mask |= 1 << bitForThreshold(i)
		}
	}
	t := s.thresholds
	return []byte{mask, t[0], t[1], t[2], t[3], t[4], t[5]}, types.CodeOK, nil
}

func (f *ipmiFace) handleGetChassisStatus(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	st := f.sync()
	// power state, last event, misc state, front panel
	b := []byte{0x40 /* restore policy: previous */, 0x10 /* last on by command */, 0x40 /* identify supported */, 0x00}
	if st.Power == "ON" {
		b[0] |= 0x01
	}
	return b, types.CodeOK, nil
}

func (f *ipmiFace) handleGetSELInfo(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	f.sync()
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 14)
	b[0] = 0x51
	binary.LittleEndian.PutUint16(b[1:3], uint16(len(f.sel)))
	binary.LittleEndian.PutUint16(b[3:5], uint16((selCapacity-len(f.sel))*16))
	var added uint32
	if n := len(f.sel); n > 0 {
		added = binary.LittleEndian.Uint32(f.sel[n-1].data[3:7])
	}
	binary.LittleEndian.PutUint32(b[5:9], added)
	if !f.selErased.IsZero() {
		binary.LittleEndian.PutUint32(b[9:13], uint32(f.selErased.Unix()))
	}
	b[13] = 0x0a // reserve SEL and clear supported (bit 1), delete not supported, get alloc info (bit 0) -> 0x03; keep reserve
	b[13] = 0x03
	return b, types.CodeOK, nil
}

func (f *ipmiFace) handleGetSELAllocInfo(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 9)
	binary.LittleEndian.PutUint16(b[0:2], selCapacity)
	binary.LittleEndian.PutUint16(b[2:4], 16)
	binary.LittleEndian.PutUint16(b[4:6], uint16(selCapacity-len(f.sel)))
	binary.LittleEndian.PutUint16(b[6:8], uint16(selCapacity-len(f.sel)))
	b[8] = 1
	return b, types.CodeOK, nil
}

func (f *ipmiFace) handleReserveSEL(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserve++
	if f.reserve == 0 {
		f.reserve = 1
	}
	return []byte{byte(f.reserve), byte(f.reserve >> 8)}, types.CodeOK, nil
}

// parseGetSELEntry decodes a Get SEL Entry request: reservation, record ID,
// offset, bytes to read (0xff: all).
func parseGetSELEntry(req []byte) (record uint16, offset, count uint8, err error) {
	if len(req) < 6 {
		return 0, 0, 0, errors.New("get SEL entry: short request")
	}
	return binary.LittleEndian.Uint16(req[2:4]), req[4], req[5], nil
}

func (f *ipmiFace) handleGetSELEntry(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	id, off, count, err := parseGetSELEntry(req)
	if err != nil {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	f.sync()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sel) == 0 {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	i := -1
	switch id {
	case 0x0000:
		i = 0
	case 0xffff:
		i = len(f.sel) - 1
	default:
		for j, r := range f.sel {
			if r.id == id {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	next := uint16(0xffff)
	if i+1 < len(f.sel) {
		next = f.sel[i+1].id
	}
	if int(off) > 16 {
		return nil, types.CodeParameterOutOfRange, nil
	}
	end := 16
	if count != 0xff && int(off)+int(count) < 16 {
		end = int(off) + int(count)
	}
	out := []byte{byte(next), byte(next >> 8)}
	out = append(out, f.sel[i].data[off:end]...)
	return out, types.CodeOK, nil
}

func (f *ipmiFace) handleClearSEL(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 6 || string(req[2:5]) != "CLR" {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if binary.LittleEndian.Uint16(req[0:2]) != f.reserve {
		return nil, types.CodeReservationCanceled, nil
	}
	if req[5] == 0xaa {
		f.sel = nil
		f.selErased = time.Now()
		f.addSELLocked(f.selErased, 0x10, ipmiSensorLog, 0x6f, 0x02) // log area reset/cleared
	}
	return []byte{0x01}, types.CodeOK, nil
}

func (f *ipmiFace) handleGetSELTime(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(time.Now().Unix()))
	return b, types.CodeOK, nil
}

// ipmiHAL is the hardware behind the BMC: the simulated server.
type ipmiHAL struct {
	face    *ipmiFace
	storage *mock.Storage
}

func (h *ipmiHAL) Chassis() hal.ChassisHAL { return ipmiChassis{h.face} }
func (h *ipmiHAL) Sensors() hal.SensorHAL  { return nil }
func (h *ipmiHAL) Storage() hal.StorageHAL { return h.storage }
func (h *ipmiHAL) Network() hal.NetworkHAL { return nil }
func (h *ipmiHAL) GPIO() hal.GPIOHAL       { return nil }
func (h *ipmiHAL) I2C() hal.I2CHAL         { return nil }
func (h *ipmiHAL) Console() hal.ConsoleHAL { return h.face.console }
func (h *ipmiHAL) Close() error            { return nil }

// ipmiChassis maps chassis commands onto the server's power and boot state.
type ipmiChassis struct{ f *ipmiFace }

func (c ipmiChassis) PowerState(context.Context) (bool, error) {
	return c.f.sync().Power == "ON", nil
}

func (c ipmiChassis) SetPower(_ context.Context, on bool) error {
	if on {
		c.f.srv.PowerOn()
	} else {
		c.f.srv.PowerOff()
	}
	c.f.sync()
	return nil
}

func (c ipmiChassis) PowerCycle(context.Context) error {
	c.f.srv.PowerOff()
	c.f.sync()
	c.f.srv.PowerOn()
	c.f.sync()
	return nil
}

func (c ipmiChassis) ColdReset(context.Context) error {
	c.f.srv.Reset()
	c.f.sync()
	return nil
}

// WarmReset is what go-ipmi calls for "chassis power soft": an ACPI
// shutdown, which the emulated OS honours at once (a machine backend's OS
// gets it through [Options.GracefulShutdown]).
func (c ipmiChassis) WarmReset(context.Context) error {
	c.f.srv.do(func(st *State) error {
		if st.Power == "ON" {
			c.f.srv.gracefulLocked()
		}
		return nil
	})
	c.f.sync()
	return nil
}

func (c ipmiChassis) Identify(context.Context, uint8) error        { return nil }
func (c ipmiChassis) IntrusionState(context.Context) (bool, error) { return false, nil }

// ipmiBootDevice maps IPMI boot device selectors to the server's device names.
var ipmiBootDevice = map[types.BootDeviceSelector]string{
	types.BootDeviceSelectorForcePXE:             "NETWORK",
	types.BootDeviceSelectorForceHardDrive:       "HDD",
	types.BootDeviceSelectorForceHardDriveSafe:   "HDD",
	types.BootDeviceSelectorForceCDROM:           "CDROM",
	types.BootDeviceSelectorForceRemoteCDROM:     "CDROM",
	types.BootDeviceSelectorForceBIOSSetup:       "BIOSSETUP",
	types.BootDeviceSelectorForceFloppy:          "FLOPPY",
	types.BootDeviceSelectorForceRemoteFloppy:    "FLOPPY",
	types.BootDeviceSelectorForceRemoteHardDrive: "HDD",
}

func (c ipmiChassis) SetBootFlags(_ context.Context, fl *types.BootOptionParam_BootFlags) error {
	if fl == nil {
		return hal.ErrNotSupported
	}
	dev, known := ipmiBootDevice[fl.BootDeviceSelector]
	if fl.BootDeviceSelector != types.BootDeviceSelectorNoOverride && !known {
		return types.CodeRequestDataFieldInvalid
	}
	c.f.mu.Lock()
	c.f.persist = fl.Persist && fl.BootFlagsValid && known
	c.f.mu.Unlock()
	hw := c.f.srv.Hardware()
	c.f.srv.Update(func(st *State) {
		mode := "LEGACY"
		if fl.BIOSBootType == types.BIOSBootTypeEFI {
			mode = "UEFI"
		}
		if fl.BootFlagsValid && hw.supportsMode(mode) {
			st.PendingBootMode = mode
		}
		switch {
		case !fl.BootFlagsValid || !known:
			st.OneTimeBoot = "Normal"
			st.ContinuousOverride = false
		case fl.Persist:
			st.OneTimeBoot = "Normal"
			order := []string{dev}
			for _, d := range st.PersistentBoot {
				if d != dev {
					order = append(order, d)
				}
			}
			st.PersistentBoot = order
			st.ContinuousOverride = true
		default:
			st.OneTimeBoot = dev
		}
	})
	return nil
}

func (c ipmiChassis) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	st := c.f.srv.State()
	c.f.mu.Lock()
	persist := c.f.persist
	c.f.mu.Unlock()
	fl := &types.BootOptionParam_BootFlags{}
	mode := st.BootMode
	if st.PendingBootMode != "" {
		mode = st.PendingBootMode
	}
	if mode == "UEFI" {
		fl.BIOSBootType = types.BIOSBootTypeEFI
	}
	dev := ""
	switch {
	case st.OneTimeBoot != "" && !strings.EqualFold(st.OneTimeBoot, "Normal"):
		dev = strings.ToUpper(st.OneTimeBoot)
	case st.ContinuousOverride && len(st.PersistentBoot) > 0:
		dev = st.PersistentBoot[0]
		fl.Persist = persist || st.ContinuousOverride
	}
	if dev == "" {
		return fl, nil
	}
	for sel, d := range ipmiBootDevice {
		if d == dev && (fl.BootDeviceSelector == 0 || sel < fl.BootDeviceSelector) {
			fl.BootDeviceSelector = sel
		}
	}
	fl.BootFlagsValid = fl.BootDeviceSelector != 0
	return fl, nil
}

func (c ipmiChassis) SetBootInfoAcknowledge(context.Context, *types.BootOptionParam_BootInfoAcknowledge) error {
	return nil
}

func (c ipmiChassis) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	return &types.BootOptionParam_BootInfoAcknowledge{}, nil
}
