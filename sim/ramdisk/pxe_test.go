package ramdisk

import "testing"

func TestParseBootEntry(t *testing.T) {
	tests := []struct {
		name, cfg               string
		uefi                    bool
		kernel, initrd, cmdline string
	}{
		{"pxelinux default deploy", `default deploy

label deploy
kernel /u/deploy_kernel
append initrd=/u/deploy_ramdisk selinux=0 ipa-api-url=http://x:1 BOOTIF=aa
ipappend 2

label boot_partition
kernel /u/kernel
append initrd=/u/ramdisk root={{ ROOT }} ro
`, false, "/u/deploy_kernel", "/u/deploy_ramdisk", "initrd=/u/deploy_ramdisk selinux=0 ipa-api-url=http://x:1 BOOTIF=aa"},
		{"pxelinux switched to boot_partition", "default boot_partition\nlabel deploy\nkernel a\nappend initrd=b x=1\nlabel boot_partition\nkernel c\nappend initrd=d root=UUID=1\n",
			false, "c", "d", "initrd=d root=UUID=1"},
		{"grub deploy", `set default=deploy
set timeout=5

menuentry "deploy" {
    linux /u/deploy_kernel selinux=0 ipa-api-url=http://x:1
    initrd /u/deploy_ramdisk
}

menuentry "boot_partition" {
    linux /u/kernel root="{{ ROOT }}" ro
    initrd /u/ramdisk
}
`, true, "/u/deploy_kernel", "/u/deploy_ramdisk", "selinux=0 ipa-api-url=http://x:1"},
		{"no default entry", "label deploy\nkernel a\nappend initrd=b\n", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, i, c := parseBootEntry(tt.cfg, tt.uefi)
			if k != tt.kernel || i != tt.initrd || c != tt.cmdline {
				t.Errorf("got (%q, %q, %q), want (%q, %q, %q)", k, i, c, tt.kernel, tt.initrd, tt.cmdline)
			}
		})
	}
}
