#ifndef RINGSIDE_CMD_H
#define RINGSIDE_CMD_H

int rs_cmd_proxy(int argc, char **argv);
int rs_cmd_validate(int argc, char **argv);
int rs_cmd_ca(int argc, char **argv);

#endif
