#ifndef HP_CLIENT_H
#define HP_CLIENT_H
int client_main(int argc, char **argv);
#endif
