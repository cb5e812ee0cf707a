/* config: placeholder until the config module lands. */
#ifndef ODS_CONFIG_H
#define ODS_CONFIG_H
#endif
