package main

// sysRenameat2 is renameat2's system call number.
const sysRenameat2 = 316
