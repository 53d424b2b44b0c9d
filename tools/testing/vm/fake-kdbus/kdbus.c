// SPDX-License-Identifier: GPL-2.0
/*
 * Stand-in for kdbus.ko, used only by test-vm.sh: it registers the kdbusfs
 * filesystem and the /sys/fs/kdbus mount point, so the VM's module-loading
 * path can be tested before (and independently of) the real module.
 * With leak=1 it leaks one allocation on load, so the kmemleak report can be
 * shown to work.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

static int fake_fill_super(struct super_block *sb, struct fs_context *fc)
{
	static const struct tree_descr files[] = { { "" } };

	return simple_fill_super(sb, 0x64627573, files);
}

static int fake_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, fake_fill_super);
}

static const struct fs_context_operations fake_ops = {
	.get_tree = fake_get_tree,
};

static int fake_init_fs_context(struct fs_context *fc)
{
	fc->ops = &fake_ops;
	return 0;
}

static struct file_system_type fake_fs = {
	.owner = THIS_MODULE,
	.name = "kdbusfs",
	.init_fs_context = fake_init_fs_context,
	.kill_sb = kill_litter_super,
};

static bool leak;
module_param(leak, bool, 0444);

/* noinline and opaque: the compiler must not drop the allocation. */
static noinline void fake_leak(void)
{
	void *p = kmalloc(128, GFP_KERNEL);

	OPTIMIZER_HIDE_VAR(p);
}

static int __init fake_init(void)
{
	int ret = sysfs_create_mount_point(fs_kobj, "kdbus");

	if (leak)
		fake_leak();

	if (ret)
		return ret;
	ret = register_filesystem(&fake_fs);
	if (ret)
		sysfs_remove_mount_point(fs_kobj, "kdbus");
	return ret;
}

static void __exit fake_exit(void)
{
	unregister_filesystem(&fake_fs);
	sysfs_remove_mount_point(fs_kobj, "kdbus");
}

module_init(fake_init);
module_exit(fake_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kdbus stand-in for the VM self-test");
