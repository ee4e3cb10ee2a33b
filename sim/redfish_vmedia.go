package sim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// rfVirtualMedia serves Managers/1/VirtualMedia/{1,2} and their actions
// (standard on iLO 5+, the HP(E) OEM ones everywhere); seg is the path
// below VirtualMedia/.
func (s *Server) rfVirtualMedia(w http.ResponseWriter, r *http.Request, seg []string, st *State) {
	dev := ""
	switch seg[0] {
	case "1":
		dev = "FLOPPY"
	case "2":
		dev = "CDROM"
	default:
		rfNotFound(w)
		return
	}
	base := rf + "/Managers/1/VirtualMedia/" + seg[0] + "/"
	oem := s.oem()
	allow := "GET, HEAD, POST, PATCH"
	if s.gen == Gen9 {
		allow = "GET, HEAD, PATCH"
	}
	if len(seg) == 1 {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			m := st.Media[dev]
			types := []string{"Floppy", "USBStick"}
			if dev == "CDROM" {
				types = []string{"CD", "DVD"}
			}
			via := "NotConnected"
			image := "" // iLO says "" (not null) for an empty drive
			imageName := ""
			if m.Inserted {
				via = "URI"
				image = m.URL
				imageName = m.URL[strings.LastIndex(m.URL, "/")+1:]
			}
			v := obj{"@odata.id": base, "@odata.type": "#VirtualMedia.v1_2_0.VirtualMedia", "Id": seg[0], "Name": "Virtual Removable Media",
				"MediaTypes": types, "Image": image, "ImageName": imageName, "Inserted": m.Inserted, "WriteProtected": m.WriteProtect,
				"ConnectedVia": via,
				"Oem": obj{oem: obj{"BootOnNextServerReset": m.BootOption == "BOOT_ONCE",
					"Actions": obj{
						"#" + oem + "iLOVirtualMedia.InsertVirtualMedia": obj{"target": base + "Actions/Oem/" + oem + "/" + oem + "iLOVirtualMedia.InsertVirtualMedia/"},
						"#" + oem + "iLOVirtualMedia.EjectVirtualMedia":  obj{"target": base + "Actions/Oem/" + oem + "/" + oem + "iLOVirtualMedia.EjectVirtualMedia/"},
					}}}}
			if s.gen != Gen9 {
				v["Actions"] = obj{
					"#VirtualMedia.InsertMedia": obj{"target": base + "Actions/VirtualMedia.InsertMedia/"},
					"#VirtualMedia.EjectMedia":  obj{"target": base + "Actions/VirtualMedia.EjectMedia/"},
				}
			}
			writeJSON(w, 200, v, allow)
		case http.MethodPatch:
			s.rfPatchVirtualMedia(w, r, dev)
		default:
			rfMessage(w, 405, "iLO.2.15.UnsupportedOperation", "")
		}
		return
	}
	if r.Method != http.MethodPost || len(seg) < 3 || seg[1] != "actions" {
		rfNotFound(w)
		return
	}
	action := seg[len(seg)-1]
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
		return
	}
	switch {
	case action == "virtualmedia.insertmedia" && s.gen != Gen9,
		action == strings.ToLower(oem)+"ilovirtualmedia.insertvirtualmedia":
		img, _ := body["Image"].(string)
		if img == "" {
			rfMessage(w, 400, "Base.1.4.PropertyMissing", "Image is required")
			return
		}
		var wp *bool
		if v, ok := body["WriteProtected"].(bool); ok {
			wp = &v
		}
		if err := s.insertMedia(r.Context(), dev, img, wp); err != nil {
			rfOpError(w, err)
			return
		}
		rfSuccess(w)
	case action == "virtualmedia.ejectmedia" && s.gen != Gen9,
		action == strings.ToLower(oem)+"ilovirtualmedia.ejectvirtualmedia":
		if err := s.ejectMedia(dev); err != nil {
			rfOpError(w, err)
			return
		}
		rfSuccess(w)
	default:
		rfNotFound(w)
	}
}

func (s *Server) rfPatchVirtualMedia(w http.ResponseWriter, r *http.Request, dev string) {
	body, err := readJSONBody(r)
	if err != nil {
		rfMessage(w, 400, "Base.1.4.MalformedJSON", "")
		return
	}
	oem := s.oem()
	for _, k := range slices.Sorted(maps.Keys(body)) {
		switch k {
		case "Image", "Oem":
		case "Inserted", "WriteProtected":
			if s.gen == Gen9 {
				// iLO 4 accepts only Image (community.general #4595).
				rfMessage(w, 400, "Base.0.10.PropertyUnknown", "The property "+k+" is not in the list of valid properties for the resource.")
				return
			}
		default:
			rfMessage(w, 400, "Base.1.4.PropertyUnknown", "The property "+k+" is not in the list of valid properties for the resource.")
			return
		}
	}
	if o, ok := body["Oem"].(map[string]any); ok {
		sub, _ := o[oem].(map[string]any)
		v, ok := sub["BootOnNextServerReset"].(bool)
		if !ok {
			rfMessage(w, 400, "Base.1.4.PropertyUnknown", "only Oem."+oem+".BootOnNextServerReset can be changed")
			return
		}
		if err := s.setBootOnNextReset(dev, v); err != nil {
			rfOpError(w, err)
			return
		}
	}
	if img, present := body["Image"]; present {
		inserted, hasInserted := body["Inserted"].(bool)
		switch v := img.(type) {
		case nil:
			if err := s.ejectMedia(dev); err != nil && opKind(err) != "notinserted" {
				rfOpError(w, err)
				return
			}
		case string:
			if hasInserted && !inserted || v == "" {
				if err := s.ejectMedia(dev); err != nil && opKind(err) != "notinserted" {
					rfOpError(w, err)
					return
				}
				break
			}
			var wp *bool
			if b, ok := body["WriteProtected"].(bool); ok {
				wp = &b
			}
			if err := s.insertMedia(r.Context(), dev, v, wp); err != nil {
				rfOpError(w, err)
				return
			}
		default:
			rfMessage(w, 400, "Base.1.4.PropertyValueTypeError", "Image must be a string or null")
			return
		}
	} else if ins, ok := body["Inserted"].(bool); ok && !ins {
		if err := s.ejectMedia(dev); err != nil && opKind(err) != "notinserted" {
			rfOpError(w, err)
			return
		}
	}
	rfSuccess(w)
}
