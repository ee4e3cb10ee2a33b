/* 64 KiB firmware image, mapped at 0xF0000 (and below 4 GiB). Reset vector at 0xFFFF0. */
	.code16
	.org 0
start16:
	cli
	movb $0x01, %al        /* milestone 1: real mode */
	outb %al, $0xf5
	/* copy page tables to RAM at 0x1000 later in 32-bit mode */
	lgdtl %cs:(gdtr - start16)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $(0xF0000 + pm32 - start16)
	.code32
pm32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movb $0x02, %al        /* milestone 2: protected mode */
	outb %al, $0xf5
	/* page tables at 0x1000: PML4 -> PDPT at 0x2000 -> 1 GiB page */
	xorl %eax, %eax
	movl $0x1000, %edi
	movl $0x1000, %ecx     /* 4096 dwords = 16 KiB */
	rep stosl
	movl $0x2003, 0x1000
	movl $0x0083, 0x2000   /* 1 GiB page, present, rw, PS */
	movl %cr4, %eax
	orl $0x20, %eax        /* PAE */
	movl %eax, %cr4
	movl $0x1000, %eax
	movl %eax, %cr3
	movl $0xC0000080, %ecx /* EFER */
	rdmsr
	orl $0x100, %eax       /* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax  /* PG */
	movl %eax, %cr0
	ljmpl $0x18, $(0xF0000 + lm64 - start16)
	.code64
lm64:
	movb $0x10, %al        /* done: qemu exits (0x10<<1)|1 = 33 */
	outb %al, $0xf4
	hlt
	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08 code32 */
	.quad 0x00cf92000000ffff /* 0x10 data */
	.quad 0x00af9a000000ffff /* 0x18 code64 */
gdtr:
	.word gdtr - gdt - 1
	.long 0xF0000 + gdt - start16
	.org 0xfff0
	.code16
reset:
	ljmp $0xf000, $0x0000
	.org 0x10000
